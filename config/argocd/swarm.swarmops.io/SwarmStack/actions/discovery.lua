-- Argo CD resource actions of a SwarmStack: the operator's imperative requests.
local actions = {}
local suspended = obj.spec ~= nil and obj.spec.suspend == true
actions["reconcile"] = {["disabled"] = suspended}
actions["rollback"] = {["disabled"] = suspended}
actions["retry"] = {["disabled"] = suspended}
actions["suspend"] = {["disabled"] = suspended}
actions["resume"] = {["disabled"] = not suspended}
return actions
