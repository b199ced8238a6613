// What the browser scripts share: Debian's Chromium, a watch on every page (a page
// error or a dialog fails the run), and the admin API.
import { chromium } from "playwright-core";

export const TIMEOUT = 10000;

export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

// Records into `errors` any page error or dialog (an injected alert) of `page`.
export function watch(page, name, errors) {
  page.setDefaultTimeout(TIMEOUT);
  page.on("pageerror", (e) => errors.push(`${name}: ${e.message}`));
  page.on("dialog", (d) => { errors.push(`${name}: a dialog opened: ${d.message()}`); d.dismiss().catch(() => {}); });
}

// An admin API call that must succeed; its result.
export function adminApi(base, adminToken) {
  return async (method, path, body) => {
    const res = await fetch(base + path, {
      method,
      headers: { Authorization: "Bearer " + adminToken, "Content-Type": "application/json" },
      body: method === "GET" ? undefined : JSON.stringify(body || {}),
    });
    if (res.status !== 200) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
    return (await res.json()).result;
  };
}
