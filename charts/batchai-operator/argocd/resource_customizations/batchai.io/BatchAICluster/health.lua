-- Argo CD health check for batchai.io/BatchAICluster (batchai-operator; see docs/operations.md, "Argo CD").
-- Argo CD runs it with only the base, table, package and a safe os library: no string or math functions.
--   status not yet written for this generation -> Progressing, errors -> Degraded,
--   resizing or nodes still preparing -> Progressing, nodes NotReady past the grace period -> Degraded,
--   otherwise (steady, no errors) -> Healthy.
local hs = {status = "Progressing", message = "Waiting for the batchai-operator to report the cluster's status"}
local st = obj.status
if st == nil or st.allocationState == nil then
  return hs
end

local generation = obj.metadata.generation
if generation ~= nil and (st.observedGeneration == nil or st.observedGeneration < generation) then
  hs.message = "The operator has not yet observed generation " .. generation .. " of the spec"
  return hs
end

local errors = st.errors or {}
if errors[1] ~= nil then
  hs.status = "Degraded"
  hs.message = (errors[1].code or "Error") .. ": " .. (errors[1].message or "")
  if errors[2] ~= nil then
    hs.message = hs.message .. " (and " .. (#errors - 1) .. " more error(s))"
  end
  return hs
end

local ready = nil
for _, c in ipairs(st.conditions or {}) do
  if c.type == "Ready" then
    ready = c
  end
end
local why = (ready and ready.message) or ""

if st.allocationState == "resizing" then
  hs.message = (why ~= "" and why) or "Resizing"
  return hs
end
if ready ~= nil and ready.status ~= "True" then
  if ready.reason == "NodesUnusable" then
    hs.status = "Degraded"
    hs.message = ready.reason .. ": " .. why
    return hs
  end
  if ready.reason == "NodesPreparing" then
    hs.message = ready.reason .. ": " .. why
    return hs
  end
end
-- Steady with no errors (also with no nodes at all: an observed pool may be scaled to zero).
hs.status = "Healthy"
hs.message = "steady: " .. why
return hs
