-- Argo CD health of a SwarmStackSet (swarm-operator): Progressing while a release walks
-- its steps or soaks, Suspended while a Manual step waits for approval (as a paused
-- rollout), Degraded when the release halted, Healthy when every cluster runs it. Clusters
-- that no step selects are named in the message, beside the health.
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

local function says(c)
  if c.message ~= nil and c.message ~= "" then
    return c.reason .. ": " .. c.message
  end
  return c.reason
end

local function withUnmatched(msg)
  local u = condition("Unmatched")
  if u ~= nil and u.status == "True" then
    return msg .. "; " .. u.message
  end
  return msg
end

if obj.metadata.deletionTimestamp ~= nil then
  hs.message = "Letting go of the generated SwarmStacks"
  return hs
end
if obj.spec ~= nil and obj.spec.suspend == true then
  hs.status = "Suspended"
  hs.message = "Suspended: the set writes no SwarmStack"
  return hs
end
if obj.status == nil or obj.status.observedGeneration == nil or obj.status.observedGeneration < obj.metadata.generation then
  hs.message = "Waiting for the operator to observe generation " .. tostring(obj.metadata.generation)
  return hs
end
local stalled = condition("Stalled")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = withUnmatched(says(stalled))
  return hs
end
local ready = condition("Ready")
if ready == nil then
  return hs
end
if ready.status ~= "True" and ready.reason == "AwaitingApproval" then
  hs.status = "Suspended"
  hs.message = withUnmatched(says(ready))
  return hs
end
if ready.status == "True" then
  hs.status = "Healthy"
  hs.message = withUnmatched(ready.message)
  return hs
end
hs.message = withUnmatched(says(ready))
return hs
