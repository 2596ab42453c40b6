-- Argo CD health of a SwarmStack (swarm-operator). A rollback is a failure: Swarm rolled
-- the release back, so the Application must not show Healthy.
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

-- Reasons of Ready=False that need someone (or that Swarm reported as a failure);
-- the others are waits the operator resolves by itself.
local failures = {
  RolledBack = true, RolloutPaused = true, RollbackPaused = true, DeadlineExceeded = true,
  ComposeInvalid = true, Conflict = true, NotOwned = true, ApplyFailed = true,
  RollbackFailed = true, ClusterNotReady = true,
}

if obj.metadata.deletionTimestamp ~= nil then
  hs.message = "Removing the stack from the Swarm"
  return hs
end
if obj.spec ~= nil and obj.spec.suspend == true then
  hs.status = "Suspended"
  hs.message = "Suspended: the operator writes nothing to the Swarm"
  return hs
end
if obj.status == nil or obj.status.observedGeneration == nil or obj.status.observedGeneration < obj.metadata.generation then
  hs.message = "Waiting for the operator to observe generation " .. tostring(obj.metadata.generation)
  return hs
end
local stalled = condition("Stalled")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = says(stalled)
  return hs
end
local reconciling = condition("Reconciling")
if reconciling ~= nil and reconciling.status == "True" then
  hs.message = says(reconciling)
  return hs
end
local ready = condition("Ready")
if ready == nil then
  return hs
end
if ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message
  return hs
end
if failures[ready.reason] then
  hs.status = "Degraded"
end
hs.message = says(ready)
return hs
