-- Each new value of the annotation is one request; the time makes it new.
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["swarm.swarmops.io/retry"] = os.date("!%Y-%m-%dT%H:%M:%SZ")
return obj
