// Drives shopchat's built-in web client in headless Chromium (run by tests/browser.rs):
// two users chat with each other, then an agent answers a consumer, all through the page.
//
//   node tests/e2e/chat.mjs BASE_URL ADMIN_TOKEN [SCREENSHOT_DIR]
import { adminApi, launch, watch as watchPage, TIMEOUT } from "./lib.mjs";

const [base, adminToken, shotDir] = process.argv.slice(2);
if (!base || !adminToken) {
  console.error("usage: chat.mjs BASE_URL ADMIN_TOKEN [SCREENSHOT_DIR]");
  process.exit(2);
}

const browser = await launch();
const errors = [];
const admin = adminApi(base, adminToken);
const watch = (page, name) => watchPage(page, name, errors);

// A new browser profile that registers `name` through the page; its page and uid.
async function register(name) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 760 } });
  const page = await context.newPage();
  watch(page, name);
  await page.goto(base + "/");
  await page.fill("#username", name);
  await page.fill("#password", "secret1");
  await page.click("#register-button");
  await page.waitForSelector("#me[data-uid]");
  await page.waitForSelector("#status:text('connected')");
  const uid = Number(await page.getAttribute("#me", "data-uid"));
  // A new account's nickname is a placeholder (login names stay private): the platform
  // names it, as it syncs every profile.
  await admin("PUT", `/admin/users/${uid}`, { nickname: name });
  return { page, uid };
}

async function say(page, text) {
  await page.fill("#text", text);
  await page.click("#send-button");
  await page.waitForSelector(`#messages li.mine:has-text("${text}")`);
}

async function expectMessage(page, text) {
  await page.waitForSelector(`#messages li.theirs:has-text("${text}")`);
}

try {
  // Two users.
  const alice = await register("alice_e2e");
  const bob = await register("bobby_e2e");
  await alice.page.fill("#new-user", String(bob.uid));
  await alice.page.click("#new-user-chat button");
  await say(alice.page, "hi bob, lunch today?");
  // Bob sees the conversation with an unread badge, opens it, reads and answers.
  await bob.page.waitForSelector("#conversations li:has-text('alice_e2e') .badge.unread:text('1')");
  await bob.page.click("#conversations li:has-text('alice_e2e')");
  await expectMessage(bob.page, "hi bob, lunch today?");
  await bob.page.waitForSelector("#conversations li:has-text('alice_e2e'):not(:has(.badge))");
  await say(bob.page, "sure, at noon");
  await expectMessage(alice.page, "sure, at noon");

  // History paging: with 22 messages, a fresh view shows the newest 20 and offers older.
  for (let i = 1; i <= 20; i++) await say(alice.page, `note ${i}`);
  await bob.page.reload();
  await bob.page.waitForSelector("#status:text('connected')");
  await bob.page.click("#conversations li:has-text('alice_e2e')");
  await expectMessage(bob.page, "note 20");
  await bob.page.waitForSelector("#older-button:visible");
  if ((await bob.page.locator("#messages li").count()) !== 20) throw new Error("first page is not 20 messages");
  await bob.page.click("#older-button");
  await bob.page.waitForSelector("#messages li:first-child:has-text('hi bob, lunch today?')");
  if ((await bob.page.locator("#messages li").count()) !== 22) throw new Error("paging did not load the last 2");
  await bob.page.waitForSelector("#older-button", { state: "hidden" });

  // A shop with one agent, who registers through the page and goes online.
  const carl = await register("carl_agent");
  await admin("PUT", "/admin/shops/7", { name: "Tea House" });
  await admin("PUT", `/admin/shops/7/agents/${carl.uid}`, { name: "Carl" });
  // The consumer contacts the shop while nobody serves it: she waits, and sees her place.
  await alice.page.fill("#new-shop", "7");
  await alice.page.click("#new-shop-chat button");
  await say(alice.page, "is the oolong in stock?");
  await alice.page.waitForSelector("#queue-banner:visible:has-text('position 1')");

  // service.me makes the page an agent's once the shop has it (after a reconnect here).
  await carl.page.reload();
  await carl.page.waitForSelector("#agent-box:visible");
  // The workbench: the queue holds her; going online takes her into "Mine".
  await carl.page.waitForSelector("#count-queue:text('1')");
  await carl.page.click("#desk-tabs button[data-tab='queue']");
  await carl.page.waitForSelector("#conversations li:has-text('alice_e2e')");
  await carl.page.click("#desk-tabs button[data-tab='mine']");
  await carl.page.selectOption("#agent-status", "online");
  await carl.page.waitForSelector("#agent-status[data-status='online']");
  await alice.page.waitForSelector("#queue-banner", { state: "hidden" });
  await carl.page.waitForSelector("#count-mine:text('1')");
  await carl.page.waitForSelector("#count-queue:text('0')");

  // The agent takes the conversation; the consumer types, and the agent sees it.
  await carl.page.click("#conversations li:has-text('alice_e2e')");
  await expectMessage(carl.page, "is the oolong in stock?");
  // The page sends at most one typing signal per 2 s (her message may have been the last
  // one): she types until the agent, whose chat is now open, sees one.
  for (let i = 0; ; i++) {
    await alice.page.fill("#text", `one more thing${".".repeat(i)}`);
    try {
      await carl.page.waitForSelector("#typing:visible:has-text('alice_e2e')", { timeout: 2500 });
      break;
    } catch (e) {
      if (i >= 4) throw e;
    }
  }
  await alice.page.fill("#text", "");
  await say(carl.page, "yes, 200 g tins ship today");
  await expectMessage(alice.page, "yes, 200 g tins ship today");
  // She has the chat open: the agent's message gets its read tick.
  await carl.page.waitForSelector("#messages li.mine.read:has-text('yes, 200 g tins ship today')");
  // She recalls a message; the agent sees the placeholder.
  await say(alice.page, "wrong message");
  await expectMessage(carl.page, "wrong message");
  await alice.page.click("#messages li.mine:has-text('wrong message') button.recall");
  await carl.page.waitForSelector("#messages li.recalled:has-text('[message recalled]')");
  if (await carl.page.locator("#messages li:has-text('wrong message')").count()) throw new Error("the recalled text is still shown");
  await alice.page.waitForSelector("#conversations li:has-text('Tea House')");
  // The consumer's chat is headed by the shop's name (shop.info), not its id.
  await alice.page.waitForSelector("#chat-title:text('Tea House')");
  // A product card is drawn as a card; this one is not signed by the platform.
  const card = { product_id: "881", title: "Oolong 200 g", price: "¥59.00" };
  const sendCard = (msgType, card) => alice.page.evaluate(([msgType, card]) => new Promise((resolve) => {
    // A second connection of hers sends it, as another client of the platform's would.
    const ws = new WebSocket(location.href.replace(/^http/, "ws").replace(/[^/]*$/, "") + "?token=" + encodeURIComponent(localStorage.getItem("shopchat.token")));
    ws.onopen = () => ws.send(JSON.stringify({ class: "chat", action: "sendMsg", content: { chat_type: 4, msg_type: msgType, to_uid: 7, shop_id: 7, role_type: 0, card } }));
    // Pushes to her reach this connection too (a read receipt as the agent reads, §7) and may
    // come before the reply: pushes are codes 200 and 202 up, the reply the first frame that is not.
    ws.onmessage = (e) => {
      const f = JSON.parse(e.data);
      if (f.code === 200 || f.code >= 202) return;
      ws.close();
      resolve(f);
    };
  }), [msgType, card]);
  const sent = await sendCard(3, card);
  if (sent.code !== 1) throw new Error("card send: " + JSON.stringify(sent));
  await carl.page.waitForSelector("#messages li.theirs .card:has-text('Oolong 200 g'):has-text('¥59.00') .unverified");
  const order = await sendCard(4, { order_no: "SO-1001", status: "paid", amount: "¥118.00" });
  if (order.code !== 1) throw new Error("order card send: " + JSON.stringify(order));
  await carl.page.waitForSelector("#messages li.theirs .card.order:has-text('Order SO-1001 · paid'):has-text('¥118.00')");
  // The customer column: who she is, and the cards she sent.
  await carl.page.waitForSelector("#customer-profile:has-text('alice_e2e')");
  await carl.page.waitForSelector("#customer-cards .card:has-text('Oolong 200 g')");
  // Languages: the page switches to Chinese and back.
  await alice.page.selectOption("#language", "zh");
  await alice.page.waitForSelector("#send-button:text('发送')");
  await alice.page.selectOption("#language", "en");
  await alice.page.waitForSelector("#send-button:text('Send')");

  if (shotDir) {
    await alice.page.screenshot({ path: `${shotDir}/web-client-consumer.png` });
    await carl.page.screenshot({ path: `${shotDir}/web-client-agent.png` });
  }

  // The agent hands the conversation to a colleague.
  const dana = await register("dana_agent");
  await admin("PUT", `/admin/shops/7/agents/${dana.uid}`, { name: "Dana" });
  await dana.page.reload();
  await dana.page.waitForSelector("#agent-box:visible");
  await dana.page.selectOption("#agent-status", "online");
  await dana.page.waitForSelector("#agent-status[data-status='online']");
  // The picker lists Carl's colleagues with their status (reopen the chat to refresh it).
  await carl.page.click("#conversations li:has-text('alice_e2e')");
  await carl.page.waitForSelector(`#transfer-to option[value='${dana.uid}']:has-text('Dana')`, { state: "attached" });
  await carl.page.selectOption("#transfer-to", String(dana.uid));
  await carl.page.click("#transfer-form button");
  const deadline = Date.now() + TIMEOUT;
  for (;;) {
    const { agents } = await admin("GET", "/admin/shops/7/agents");
    const open = Object.fromEntries(agents.map((a) => [a.uid, a.open_conversations]));
    if (open[dana.uid] === 1 && open[carl.uid] === 0) break;
    if (Date.now() > deadline) {
      throw new Error(`transfer not seen (page says "${await carl.page.textContent("#chat-error")}"): ${JSON.stringify(agents)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  if (await carl.page.textContent("#chat-error")) throw new Error("transfer error: " + await carl.page.textContent("#chat-error"));

  // Dana, now assigned, opens it with its history; then an image, uploaded through
  // /user/upload and sent as msg_type 2, reaches her live.
  await dana.page.click("#conversations li:has-text('alice_e2e')");
  await expectMessage(dana.page, "is the oolong in stock?");
  const png = Buffer.from("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=", "base64");
  await alice.page.setInputFiles("#image", { name: "dot.png", mimeType: "image/png", buffer: png });
  await alice.page.waitForSelector("#messages li.mine img.picture");
  await dana.page.waitForSelector("#messages li.theirs img.picture");
  await dana.page.click("#messages li.theirs img.picture");
  await dana.page.waitForSelector("#viewer:visible");
  await dana.page.keyboard.press("Escape");
  await dana.page.waitForSelector("#viewer", { state: "hidden" });

  // With Dana's tab hidden, a message counts in the title, notifies and beeps. (The
  // desktop notification is the browser's; the test stands in for its constructor.)
  await dana.page.evaluate(() => {
    window.__notes = [];
    window.Notification = class { constructor(title, o) { window.__notes.push([title, o.body]); } };
    window.Notification.permission = "granted";
    Object.defineProperty(document, "hidden", { value: true, configurable: true });
    document.dispatchEvent(new Event("visibilitychange"));
  });
  await say(alice.page, "are you still there?");
  await dana.page.waitForFunction(() => document.title.startsWith("(1) "));
  const notes = await dana.page.evaluate(() => window.__notes);
  if (notes.length !== 1 || notes[0][1] !== "are you still there?") throw new Error("notification: " + JSON.stringify(notes));
  await dana.page.evaluate(() => {
    Object.defineProperty(document, "hidden", { value: false, configurable: true });
    document.dispatchEvent(new Event("visibilitychange"));
  });
  await dana.page.waitForFunction(() => !document.title.startsWith("("));

  // Dana resolves; the consumer is asked for a rating and gives 5 stars with a comment.
  await dana.page.click("#resolve-button");
  await alice.page.waitForSelector("#rating-form:visible");
  await alice.page.check("#rating-form input[name=score][value='5']");
  await alice.page.fill("#rating-comment", "quick and kind");
  await alice.page.click("#rating-button");
  await alice.page.waitForSelector("#rating-form", { state: "hidden" });
  await dana.page.waitForSelector("#count-resolved:text('1')");
  await dana.page.click("#desk-tabs button[data-tab='resolved']");
  await dana.page.click("#conversations li:has-text('alice_e2e')");
  await dana.page.waitForSelector("#customer-sessions li:has-text('★★★★★ quick and kind')");
  await dana.page.click("#desk-tabs button[data-tab='mine']");
  const { rows: ratings } = await admin("GET", "/admin/shops/7/ratings");
  if (ratings.length !== 1 || ratings[0].score !== 5 || ratings[0].comment !== "quick and kind") {
    throw new Error("rating not stored: " + JSON.stringify(ratings));
  }

  // Hostile text stays text: a nickname, a message, a quick reply and a card title that
  // are markup show as typed, and no script runs.
  const IMG = "<img src=x onerror=alert(1)>";
  const SCRIPT = "<script>alert(2)</script>";
  await admin("PUT", `/admin/users/${alice.uid}`, { nickname: IMG });
  await admin("PUT", "/admin/shops/7/quick_replies/thx", { text: `${IMG} thanks for waiting` });
  await say(alice.page, SCRIPT);
  await dana.page.waitForSelector(`#messages li.theirs:has-text("${SCRIPT}")`);
  await dana.page.waitForSelector(`#conversations li:has-text("${IMG}")`);
  // Quick replies: "/" opens the picker, Esc closes it, Enter takes the reply and Enter sends.
  await dana.page.click("#text");
  await dana.page.keyboard.type("/th");
  await dana.page.waitForSelector(`#quick-picker:visible li:has-text("${IMG} thanks for waiting")`);
  await dana.page.keyboard.press("Escape");
  await dana.page.waitForSelector("#quick-picker", { state: "hidden" });
  await dana.page.keyboard.type("x");
  await dana.page.keyboard.press("Backspace");
  await dana.page.waitForSelector("#quick-picker:visible");
  await dana.page.keyboard.press("Enter");
  if (await dana.page.inputValue("#text") !== `${IMG} thanks for waiting`) throw new Error("the quick reply was not inserted");
  await dana.page.keyboard.press("Enter");
  await expectMessage(alice.page, `${IMG} thanks for waiting`);
  // Shift+Enter is a new line, Enter sends.
  await alice.page.click("#text");
  await alice.page.keyboard.type("line one");
  await alice.page.keyboard.press("Shift+Enter");
  await alice.page.keyboard.type("line two");
  await alice.page.keyboard.press("Enter");
  await expectMessage(dana.page, "line two");
  const two = await dana.page.locator("#messages li.theirs:has-text('line two') .body").textContent();
  if (two !== "line one\nline two") throw new Error("Shift+Enter: " + JSON.stringify(two));
  if (await alice.page.locator("img[src=x]").count() || await dana.page.locator("img[src=x]").count()) {
    throw new Error("markup from a user was put in the page");
  }

  // A consumer on a phone arrives by a "咨询商品" link with the platform's token: no login
  // form, the token leaves the address bar, and the product card is offered, unverified.
  const reg = await (await fetch(base + "/login/register", { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username: "erin_phone", password: "secret1" }) })).json();
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  const erin = await phone.newPage();
  watch(erin, "erin");
  const title = `Oolong ${IMG}`;
  await erin.goto(`${base}/?shop=7&product_id=881&title=${encodeURIComponent(title)}&price=${encodeURIComponent("¥59.00")}#token=${reg.result.token}`);
  await erin.waitForSelector("#main:visible");
  if (await erin.locator("#login").isVisible()) throw new Error("the login form showed");
  if (erin.url().includes("token=")) throw new Error("the token stayed in the address bar: " + erin.url());
  await erin.waitForSelector("#chat-title:text('Tea House')");
  await erin.waitForSelector(`#deeplink-card:visible .card:has-text("${title}") .unverified`);
  await erin.click("#deeplink-send");
  await erin.waitForSelector(`#messages li.mine .card:has-text("${title}")`);
  if (await erin.locator("img[src=x]").count()) throw new Error("a card title was put in the page as markup");

  if (errors.length) throw new Error("errors in the page: " + errors.join("; "));
  console.log("e2e: ok");
} catch (e) {
  console.error("e2e: FAILED: " + (e.stack || e));
  process.exitCode = 1;
} finally {
  await browser.close();
}
