-- Argo CD health of a SwarmCluster (swarm-operator): Healthy while a manager answers
-- and quorum holds.
local hs = {status = "Progressing", message = "Waiting for the operator"}

local function condition(t)
  if obj.status == nil or obj.status.conditions == nil then
    return nil
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == t then
      return c
    end
  end
  return nil
end

if obj.status == nil or obj.status.observedGeneration == nil or obj.status.observedGeneration < obj.metadata.generation then
  hs.message = "Waiting for the operator to observe generation " .. tostring(obj.metadata.generation)
  return hs
end
local ready = condition("Ready")
if ready == nil then
  return hs
end
if ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message
  local warn = condition("ManagerCountWarning")
  if warn ~= nil and warn.status == "True" then
    hs.message = hs.message .. "; " .. warn.message
  end
  return hs
end
hs.status = "Degraded"
hs.message = ready.reason .. ": " .. ready.message
return hs
