-- wrk script for the cors rows: every request carries an allowed Origin.
--
--   wrk ... -s bench/cors.lua URL -- actual      GET with Origin (and the -H token)
--   wrk ... -s bench/cors.lua URL -- preflight   OPTIONS preflight, answered by authgate

function init(args)
  wrk.headers["Origin"] = "https://app.example.com"
  if args[1] == "preflight" then
    wrk.method = "OPTIONS"
    wrk.headers["Access-Control-Request-Method"] = "GET"
    wrk.headers["Access-Control-Request-Headers"] = "authorization"
  elseif args[1] ~= "actual" then
    error("cors.lua: pass actual or preflight after --")
  end
end
