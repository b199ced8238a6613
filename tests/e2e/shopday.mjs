// A whole shop day through the built-in web client (run by tests/browser.rs), in the
// order issue 19 tells it: a consumer on a phone arrives by a product link and waits,
// agents serve her from the workbench, she rates them, and the platform sees it.
//
//   node tests/e2e/shopday.mjs BASE_URL ADMIN_TOKEN [SCREENSHOT_DIR]
import { createHmac } from "node:crypto";
import { adminApi, launch, watch as watchPage } from "./lib.mjs";

const [base, adminToken, shotDir] = process.argv.slice(2);
if (!base || !adminToken) {
  console.error("usage: shopday.mjs BASE_URL ADMIN_TOKEN [SCREENSHOT_DIR]");
  process.exit(2);
}
const browser = await launch();
const errors = [];
const admin = adminApi(base, adminToken);
const watch = (page, name) => watchPage(page, name, errors);

// A self-registered account (login `{name}_shopday`) that the platform names `name`.
async function account(name) {
  const res = await fetch(base + "/login/register", { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username: `${name.toLowerCase()}_shopday`, password: "secret1" }) });
  const { token } = (await res.json()).result;
  const me = await fetch(base + "/user/index", { method: "POST", headers: { "Content-Type": "application/json", authorizations: "bear " + token }, body: "{}" });
  const uid = (await me.json()).result.mine.id;
  await admin("PUT", `/admin/users/${uid}`, { nickname: name });
  return { uid, token };
}

// An agent's workbench: a desktop browser opened with the platform's token.
async function workbench(name, uid, token, locale) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 760 }, locale });
  const page = await context.newPage();
  watch(page, name);
  await page.goto(`${base}/#token=${token}`);
  await page.waitForSelector("#agent-box:visible");
  return page;
}

try {
  const amy = await account("Amy");
  const bo = await account("Bo");
  await admin("PUT", "/admin/shops/3", {
    name: "Tea House", welcome_msg: "Welcome to Tea House!", offline_msg: "We will be right with you.",
  });
  await admin("PUT", `/admin/shops/3/agents/${amy.uid}`, { name: "Amy" });
  await admin("PUT", `/admin/shops/3/agents/${bo.uid}`, { name: "Bo" });
  await admin("PUT", "/admin/shops/3/quick_replies/ship", { text: "Yes, it ships today from Hangzhou." });
  const amyPage = await workbench("Amy", amy.uid, amy.token, "en-US");
  const boPage = await workbench("Bo", bo.uid, bo.token, "zh-CN");

  // A consumer on a phone follows a "咨询商品" link with her token: the product card is
  // offered; she sends it, and waits in the queue, seeing her place.
  const erinAccount = await account("Erin");
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, locale: "en-US" });
  const erin = await phone.newPage();
  watch(erin, "Erin");
  // The platform signs the card (§12: HMAC-SHA256 of the fields' canonical JSON).
  const fields = { price: "¥59.00", product_id: "881", title: "Oolong 200 g" };
  const sig = createHmac("sha256", process.env.SHOPCHAT_CARD_SECRET || "").update(JSON.stringify(fields)).digest("hex");
  await erin.goto(`${base}/?shop=3&product_id=881&title=${encodeURIComponent("Oolong 200 g")}&price=${encodeURIComponent("¥59.00")}&sig=${sig}#token=${erinAccount.token}`);
  await erin.waitForSelector("#chat-title:text('Tea House')");
  if (erin.url().includes("token=")) throw new Error("the token stayed in the address bar");
  await erin.waitForSelector("#deeplink-card:visible .card:has-text('Oolong 200 g')");
  if (await erin.locator("#deeplink-card .unverified").count()) throw new Error("a signed card was offered as unverified");
  await erin.click("#deeplink-send");
  await erin.waitForSelector("#messages li.mine .card:has-text('Oolong 200 g')");
  await erin.waitForSelector("#queue-banner:visible:has-text('position 1')");
  await erin.waitForSelector("#messages li.theirs.auto:has-text('We will be right with you.')");

  // Amy goes online in the workbench and gets the session, with the card.
  await amyPage.waitForSelector("#count-queue:text('1')");
  await amyPage.selectOption("#agent-status", "online");
  await amyPage.waitForSelector("#count-mine:text('1')");
  await erin.waitForSelector("#queue-banner", { state: "hidden" });
  await amyPage.click("#conversations li:has-text('Erin')");
  await amyPage.waitForSelector("#messages li.theirs .card:has-text('Oolong 200 g') .verified");
  await amyPage.waitForSelector("#customer-profile:has-text('Erin')");
  await amyPage.waitForSelector("#customer-cards .card:has-text('Oolong 200 g')");

  // She answers with a quick reply; Erin sees her typing, then the answer; Amy sees the tick.
  await amyPage.click("#text");
  await amyPage.keyboard.type("/sh");
  await erin.waitForSelector("#typing:visible");
  await amyPage.waitForSelector("#quick-picker:visible li:has-text('ships today')");
  await amyPage.keyboard.press("Enter");
  await amyPage.keyboard.press("Enter");
  await erin.waitForSelector("#messages li.theirs:has-text('Yes, it ships today from Hangzhou.')");
  await amyPage.waitForSelector("#messages li.mine.read:has-text('Yes, it ships today from Hangzhou.')");
  if (shotDir) {
    await amyPage.screenshot({ path: `${shotDir}/web-workbench.png` });
    await erin.screenshot({ path: `${shotDir}/web-phone.png` });
  }

  // Erin recalls a message; Amy sees the placeholder.
  await erin.fill("#text", "two tins please, no, one");
  await erin.click("#send-button");
  await amyPage.waitForSelector("#messages li.theirs:has-text('two tins please, no, one')");
  await erin.click("#messages li.mine:has-text('two tins please, no, one') button.recall");
  await amyPage.waitForSelector("#messages li.recalled:has-text('[message recalled]')");

  // Erin's connection drops: the page says so, and catches up when it is back.
  await erin.evaluate(() => state.ws.close());
  await erin.waitForSelector("#status[data-state='disconnected']");
  await amyPage.fill("#text", "Your tin is packed.");
  await amyPage.click("#send-button");
  await erin.waitForSelector("#status[data-state='connected']");
  await erin.waitForSelector("#messages li.theirs:has-text('Your tin is packed.')");

  // Amy transfers to Bo, picked from the list; Bo's workbench is in Chinese.
  await boPage.selectOption("#agent-status", "online");
  await boPage.waitForSelector("#agent-status[data-status='online']");
  await amyPage.click("#conversations li:has-text('Erin')");
  await amyPage.waitForSelector(`#transfer-to option[value='${bo.uid}']:has-text('Bo')`, { state: "attached" });
  await amyPage.selectOption("#transfer-to", String(bo.uid));
  await amyPage.click("#transfer-form button:not([type=button])");
  await boPage.waitForSelector("#count-mine:text('1')");
  await boPage.click("#conversations li:has-text('Erin')");
  await boPage.waitForSelector("#messages li:has-text('Your tin is packed.')");
  await boPage.waitForSelector("#send-button:text('发送')");
  if (shotDir) await boPage.screenshot({ path: `${shotDir}/web-zh.png` });

  // Bo resolves; Erin rates 5 stars with a comment; the platform's numbers show it.
  await boPage.click("#resolve-button");
  await erin.waitForSelector("#rating-form:visible");
  if (shotDir) await erin.screenshot({ path: `${shotDir}/web-en.png` });
  await erin.check("#rating-form input[name=score][value='5']");
  await erin.fill("#rating-comment", "Fast and friendly");
  await erin.click("#rating-button");
  await erin.waitForSelector("#rating-form", { state: "hidden" });
  const stats = await admin("GET", "/admin/shops/3/stats");
  if (stats.rating.count !== 1 || stats.rating.avg !== 5) throw new Error("stats: " + JSON.stringify(stats.rating));
  const { rows } = await admin("GET", "/admin/shops/3/ratings");
  if (rows[0].comment !== "Fast and friendly") throw new Error("ratings: " + JSON.stringify(rows));

  // Her next message starts a new session, which the shop welcomes.
  await erin.fill("#text", "thanks again!");
  await erin.click("#send-button");
  await erin.waitForSelector("#messages li.theirs.auto:has-text('Welcome to Tea House!')");

  if (errors.length) throw new Error("errors in the page: " + errors.join("; "));
  console.log("e2e: ok");
} catch (e) {
  console.error("e2e: FAILED: " + (e.stack || e));
  process.exitCode = 1;
} finally {
  await browser.close();
}
