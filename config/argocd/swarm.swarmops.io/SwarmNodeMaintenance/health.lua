-- Argo CD health of a SwarmNodeMaintenance (swarm-operator): Healthy while it waits for
-- its window, holds its nodes or is done; Progressing while nodes drain or come back;
-- Degraded when blocked or failed.
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

if obj.metadata.deletionTimestamp ~= nil then
  hs.message = "Restoring the nodes before the maintenance goes"
  return hs
end
if obj.status == nil or obj.status.observedGeneration == nil or obj.status.observedGeneration < obj.metadata.generation then
  hs.message = "Waiting for the operator to observe generation " .. tostring(obj.metadata.generation)
  return hs
end
local ready = condition("Ready")
local phase = obj.status.phase
local msg = ""
if ready ~= nil and ready.message ~= nil then
  msg = ready.message
end
if phase == "Failed" or phase == "Blocked" then
  hs.status = "Degraded"
  if ready ~= nil then
    hs.message = phase .. " (" .. ready.reason .. "): " .. msg
  else
    hs.message = phase
  end
  return hs
end
local stalled = condition("Stalled")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = stalled.reason .. ": " .. stalled.message
  return hs
end
if phase == "Draining" or phase == "Restoring" then
  hs.message = phase .. ": " .. msg
  return hs
end
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = phase .. ": " .. msg
  return hs
end
return hs
