package lockctl

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// landingPage is what an emailed link opens. The secret travels in the URL
// fragment, which browsers never send, so it appears in no server log; the
// page's script reads it and calls the API with KISI-GROUP-LINK, or with
// KISI-ACCESS-KEY for a fragment "key:<secret>" (a guest's access key) and
// KISI-LOGIN for "login:<secret>" (a user's login).
const landingPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Access link</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem}
button{font-size:1.1rem;padding:.6rem 1rem;margin:.3rem 0;width:100%}#msg{min-height:1.5rem}</style></head>
<body><h1>Your doors</h1><p id="msg"></p><div id="locks"></div>
<script>
const frag = location.hash.slice(1);
const scheme = frag.startsWith("key:") ? "KISI-ACCESS-KEY" : frag.startsWith("login:") ? "KISI-LOGIN" : "KISI-GROUP-LINK";
const secret = frag.replace(/^(key|login):/, "");
const auth = {"Authorization": scheme + " " + secret, "Accept": "application/json"};
const msg = t => document.getElementById("msg").textContent = t;
async function load() {
  const r = await fetch("locks", {headers: auth});
  const body = await r.json();
  if (!r.ok) { msg(body.error || "This link does not work."); return; }
  const box = document.getElementById("locks");
  for (const l of body) {
    const b = document.createElement("button");
    b.textContent = "Unlock " + l.name;
    b.onclick = async () => {
      const u = await fetch("locks/" + l.id + "/unlock", {method: "POST", headers: auth});
      const ub = await u.json();
      msg(ub.message || ub.error || "");
    };
    box.appendChild(b);
  }
  if (body.length === 0) msg("No doors.");
}
if (secret) { load(); } else { msg("This link is incomplete."); }
</script></body></html>
`

// landing serves the link holder's page (GET /grouplinks).
func (c *Controller) landing(ec echo.Context) error {
	ec.Response().Header().Set("Cache-Control", "no-store")
	ec.Response().Header().Set("Referrer-Policy", "no-referrer")
	return ec.HTML(http.StatusOK, landingPage)
}
