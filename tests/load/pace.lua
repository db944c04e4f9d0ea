-- wrk script: each connection waits PACE_MS between requests, so -c N connections offer
-- about N * 1000 / PACE_MS requests a second (a fixed rate, not a flood).
local pace = tonumber(os.getenv("PACE_MS") or "10")
function delay()
  return pace
end
