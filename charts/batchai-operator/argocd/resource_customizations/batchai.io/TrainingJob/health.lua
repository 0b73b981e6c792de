-- Argo CD health check for batchai.io/TrainingJob (batchai-operator; see docs/operations.md, "Argo CD").
-- Argo CD runs it with only the base, table, package and a safe os library: no string or math functions.
--   succeeded -> Healthy, failed -> Degraded (both final: later spec edits do not change them),
--   status not yet written for this generation -> Progressing, Suspended condition -> Suspended,
--   otherwise (queued, running, terminating) -> Progressing with the state and why.
local hs = {status = "Progressing", message = "Waiting for the batchai-operator to report the job's status"}
local st = obj.status
if st == nil or st.executionState == nil then
  return hs
end

local function condition(ctype)
  for _, c in ipairs(st.conditions or {}) do
    if c.type == ctype then
      return c
    end
  end
  return nil
end

local function is_true(ctype)
  local c = condition(ctype)
  return c ~= nil and c.status == "True"
end

if st.executionState == "failed" then
  -- The Failed condition says most (the node, OOMKilled); the error keeps Batch AI's terse text.
  local errors = (st.executionInfo or {}).errors or {}
  local first = errors[1]
  local c = condition("Failed")
  local detail = (c ~= nil and c.message ~= nil and c.message ~= "" and c.message) or nil
  if first ~= nil then
    hs.message = (first.code or "JobFailed") .. ": " .. (detail or first.message or "")
  else
    hs.message = detail or "The job failed"
  end
  hs.status = "Degraded"
  return hs
end
if st.executionState == "succeeded" then
  local c = condition("Succeeded")
  hs.status = "Healthy"
  hs.message = (c and c.message ~= "" and c.message) or "The job completed successfully"
  local code = (st.executionInfo or {}).exitCode
  if code ~= nil then
    hs.message = hs.message .. " (exit code " .. code .. ")"
  end
  return hs
end

local generation = obj.metadata.generation
if generation ~= nil and (st.observedGeneration == nil or st.observedGeneration < generation) then
  hs.message = "The operator has not yet observed generation " .. generation .. " of the spec"
  return hs
end

if is_true("Suspended") then
  local c = condition("Suspended")
  hs.status = "Suspended"
  hs.message = (c.message ~= nil and c.message ~= "" and c.message) or "The job is suspended"
  return hs
end

local active = nil
for _, ctype in ipairs({"Running", "Queued"}) do
  if is_true(ctype) then
    active = condition(ctype)
    break
  end
end
hs.message = st.executionState
if active ~= nil then
  hs.message = hs.message .. " (" .. (active.reason or active.type) .. ")"
  if active.message ~= nil and active.message ~= "" then
    hs.message = hs.message .. ": " .. active.message
  end
end
return hs
