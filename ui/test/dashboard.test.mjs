// The web dashboard in a real headless Chromium (playwright-core driving the system's
// browser) against a running API. tests/ui/test_dashboard.py starts the API with a fresh
// database, creates the code and passes everything in the environment:
//   PGCAPACITY_URL, ADMIN_TOKEN, CLIENT_TOKEN, CODE, CHROMIUM, SCREENSHOT
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { chromium } from "playwright-core";

const env = (name) => {
  const value = process.env[name];
  assert.ok(value, `${name} is not set (run this through tests/ui/test_dashboard.py)`);
  return value;
};
const BASE = env("PGCAPACITY_URL");
const ADMIN = env("ADMIN_TOKEN");
const CLIENT = env("CLIENT_TOKEN");
const CODE = env("CODE");

let browser;
before(async () => {
  browser = await chromium.launch({ executablePath: env("CHROMIUM"), args: ["--no-sandbox"] });
});
after(async () => browser && browser.close());

// A page that records its console errors, uncaught exceptions and requests.
async function openPage() {
  const context = await browser.newContext({ viewport: { width: 1360, height: 1400 } });
  const page = await context.newPage();
  const problems = [];
  const requests = [];
  page.on("console", (m) => { if (m.type() === "error") problems.push(`console: ${m.text()}`); });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("request", (r) => requests.push(r.url()));
  return { context, page, problems, requests };
}

async function api(path, token, body) {
  const response = await fetch(`${BASE}${path}`, {
    method: body === undefined ? "GET" : "POST",
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
}

const inUse = (page) => page.locator(`#codes tr[data-code="${CODE}"] td:nth-child(4)`);

test("an unauthenticated browser gets the login form and no data", async () => {
  const { context, page, problems, requests } = await openPage();
  await page.goto(`${BASE}/ui`);
  await page.locator("#login-form").waitFor({ state: "visible" });
  assert.equal(await page.locator("#app").isHidden(), true);
  assert.equal(await page.locator("#codes tbody tr").count(), 0);
  assert.deepEqual(requests.filter((u) => u.includes("/v1/")), [], "no API call before signing in");

  await page.fill("#token", "not-the-token");
  await page.click("#login-form button[type=submit]");
  await page.locator("#login-error", { hasText: "not valid" }).waitFor();
  await page.fill("#token", CLIENT);
  await page.click("#login-form button[type=submit]");
  await page.locator("#login-error", { hasText: "admin token" }).waitFor();
  assert.equal(await page.locator("#app").isHidden(), true, "a client token does not sign in");
  // The rejected tokens were checked, not kept: the 401 of the wrong one is the only error.
  assert.deepEqual(problems.filter((p) => !p.includes("401")), []);
  await context.close();
});

test("signed in, the dashboard follows a claim made through the API", async () => {
  const { context, page, problems, requests } = await openPage();
  await page.goto(`${BASE}/ui`);
  await page.fill("#token", ADMIN);
  await page.click("#login-form button[type=submit]");
  await page.locator("#app").waitFor({ state: "visible" });
  assert.equal(await page.locator("#login").isHidden(), true, "the login form is gone");
  await inUse(page).waitFor();
  assert.equal(await inUse(page).textContent(), "0");
  assert.ok(await page.locator("#pools td", { hasText: "ui-test" }).count() > 0, "the pool is listed");

  // A claim through the API; the page shows it without a reload, within 2 s.
  const claimed = Date.now();
  const claim = await api(`/v1/codes/${CODE}/claims`, CLIENT, { holder: "browser-test" });
  assert.equal(claim.status, 201, JSON.stringify(claim.body));
  await page.locator(`#codes tr[data-code="${CODE}"] td:nth-child(4)`, { hasText: /^1$/ }).waitFor({ timeout: 2000 });
  const seenAfterMs = Date.now() - claimed;
  console.log(`dashboard showed the claim ${seenAfterMs} ms after the API answered`);
  assert.ok(seenAfterMs <= 2000, `shown after ${seenAfterMs} ms`);

  // The events chart draws the claim: a non-zero point, and pixels on its canvas.
  await page.waitForFunction(() => {
    const chart = Chart.getChart("chart-events");
    return chart && chart.data.datasets[0].data.some((v) => v > 0);
  }, null, { timeout: 10000 });
  const painted = await page.evaluate(() => {
    const canvas = document.getElementById("chart-events");
    const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    let coloured = 0;
    for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) coloured++;
    return coloured;
  });
  assert.ok(painted > 1000, `the events chart painted ${painted} pixels`);

  // A code's detail lists its claims; changing its capacity asks first, then applies.
  await page.click(`#codes tr[data-code="${CODE}"]`);
  await page.locator("#claims td", { hasText: "browser-test" }).waitFor();
  await page.fill("#capacity-input", "7");
  await page.click("#capacity-form button[type=submit]");
  await page.locator("#confirm-text", { hasText: `capacity of ${CODE} to 7` }).waitFor();
  await page.click("#confirm-yes");
  await page.locator("#claims-note", { hasText: "is now 7" }).waitFor();
  assert.equal((await api(`/v1/codes/${CODE}`, CLIENT)).body.max_uses, 7);
  await page.click("#detail-close");
  // The latency chart has the claim's minute (the screenshot then shows every chart drawn).
  await page.waitForFunction(() => {
    const chart = Chart.getChart("chart-latency");
    return chart && chart.data.datasets[0].data.some((v) => v > 0);
  }, null, { timeout: 10000 });
  await page.screenshot({ path: env("SCREENSHOT"), fullPage: true });

  // The token is in no URL, no cookie and not in the page's HTML.
  assert.ok(requests.every((u) => !u.includes(ADMIN)), "the token is in no requested URL");
  assert.ok(!page.url().includes(ADMIN));
  assert.equal(await page.evaluate(() => document.cookie), "");
  assert.ok(!(await page.content()).includes(ADMIN), "the token is not in the page");
  assert.deepEqual(problems, [], "no console error");

  await page.click("#logout");
  await page.locator("#login-form").waitFor({ state: "visible" });
  assert.equal(await page.evaluate(() => sessionStorage.length), 0, "signing out forgets the token");
  await context.close();
});
