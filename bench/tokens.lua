-- wrk script: send every request with a different bearer token.
--
--   wrk ... -s bench/tokens.lua URL -- TOKEN_FILE
--
-- TOKEN_FILE has one "OFFSET TOKEN" per line. Each request takes the next
-- line (cycling) and overwrites 8 characters at byte OFFSET (1-based) with a
-- base64url counter, so no two requests in a run carry the same token even
-- after the file has been cycled many times. That keeps a gateway from
-- answering repeats out of a cache: a stream of distinct forged tokens is what
-- an attacker can send for free, and what we want to price.

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
local lines = {}
local n = 0
local counter = 0

local function enc8(v)
  local out = {}
  for k = 1, 8 do
    local d = v % 64
    out[k] = B64:sub(d + 1, d + 1)
    v = (v - d) / 64
  end
  return table.concat(out)
end

function init(args)
  local path = args[1]
  if path == nil then
    error("tokens.lua: pass the token file after --")
  end
  local f = assert(io.open(path, "r"))
  for line in f:lines() do
    local off, tok = line:match("^(%d+) (%S+)$")
    if off then
      n = n + 1
      lines[n] = { tonumber(off), tok:sub(1, tonumber(off) - 1), tok:sub(tonumber(off) + 8) }
    end
  end
  f:close()
  if n == 0 then
    error("tokens.lua: no tokens in " .. path)
  end
end

function request()
  counter = counter + 1
  local l = lines[(counter - 1) % n + 1]
  local tok = l[2] .. enc8(counter) .. l[3]
  return wrk.format(nil, nil, { ["Authorization"] = "Bearer " .. tok })
end
