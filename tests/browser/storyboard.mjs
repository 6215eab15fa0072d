// Drives the storyboard MCP App in Debian's Chromium through the test host (host.html).
// Usage: node storyboard.mjs <host url> <screenshot dir> <hostile scene index> <scene to regenerate> <provider>
// Prints one JSON object (what it saw) on stdout; exits non-zero on the first failed check.
import { chromium } from "playwright-core";

const [hostUrl, shots, hostileIndex, regenIndex, provider] = process.argv.slice(2);
const FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
  "--no-first-run"];
const seen = { requests: [], consoleErrors: [] };

function check(ok, what) {
  if (!ok) throw new Error("check failed: " + what);
}

// The app runs in a sandboxed (opaque-origin) iframe, which Chromium renders out of process: a full-page
// screenshot would show only what the viewport covered. The viewport is grown to the whole page instead.
async function shoot(page, app, path) {
  const height = await page.evaluate(() => document.documentElement.scrollHeight);
  await page.setViewportSize({ width: page.viewportSize().width, height });
  await app.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
  await page.waitForTimeout(300);
  await page.screenshot({ path });
}

async function openStoryboard(browser, width, url) {
  const context = await browser.newContext({ viewport: { width, height: 900 } });
  const page = await context.newPage();
  // Anything the page or the app asks of the network beyond the test host is recorded (the app must ask nothing).
  page.on("request", (r) => seen.requests.push(r.url()));
  page.on("console", (m) => { if (m.type() === "error") seen.consoleErrors.push(m.text()); });
  await page.goto(url || hostUrl);
  const handle = await page.waitForSelector("iframe", { timeout: 30000 });
  const app = await handle.contentFrame();
  // Every scene's three frames decoded (data: JPEGs read through the bridge).
  await app.waitForFunction(() => {
    const imgs = [...document.querySelectorAll(".scene .frames img")];
    return imgs.length > 0 && imgs.every((i) => i.complete && i.naturalWidth > 0);
  }, null, { timeout: 60000 });
  await app.waitForFunction(() => {
    const v = document.querySelector("video");
    return v && v.readyState >= 1 && v.duration > 0;
  }, null, { timeout: 60000 });
  await app.waitForFunction(() => [...document.querySelectorAll("img.thumb-full, img.thumb-phone")]
    .every((i) => i.complete && i.naturalWidth > 0), null, { timeout: 30000 });
  return { context, page, app };
}

const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", headless: true, args: FLAGS });
try {
  const desktop = await openStoryboard(browser, 1280);
  const { page, app } = desktop;
  const hostError = await page.evaluate(() => window.hostError || null);
  check(hostError === null, "host error: " + hostError);

  seen.appMeta = await page.evaluate(() => window.appMeta);
  seen.scenes = await app.$$eval(".scene", (cards) => cards.map((c) => ({
    index: Number(c.dataset.index),
    heading: c.querySelector("h3").textContent,
    state: c.querySelector("h3 + .chip").textContent,
    facts: c.querySelector(".row.muted").textContent,
    prompt: c.querySelector(".prompt").textContent,
    frames: [...c.querySelectorAll(".frames img")].map((i) => ({ uri: i.dataset.uri, w: i.naturalWidth, h: i.naturalHeight })),
    narration: c.querySelector(".narr") ? c.querySelector(".narr").textContent : null,
    words: c.querySelectorAll(".word").length,
  })));
  seen.thumbnail = await app.$$eval("img.thumb-full, img.thumb-phone", (imgs) => imgs.map((i) => ({
    cls: i.className, natural: [i.naturalWidth, i.naturalHeight], shown: [i.clientWidth, i.clientHeight] })));
  seen.video = await app.$eval("video", (v) => ({ src: v.src.slice(0, 5), duration: v.duration,
    size: [v.videoWidth, v.videoHeight] }));
  // Playable: Chromium decodes the rendition and its clock runs.
  seen.played = await app.evaluate(async () => {
    const v = document.querySelector("video");
    v.muted = true;
    await v.play();
    await new Promise((r) => setTimeout(r, 1500));
    v.pause();
    const at = v.currentTime;
    v.currentTime = 0;
    await new Promise((r) => v.addEventListener("seeked", r, { once: true }));
    return { at, readyState: v.readyState };
  });
  seen.totals = await app.$eval("#totals", (n) => n.textContent);
  seen.credits = await app.$eval("#credits", (n) => n.textContent);

  // The hostile prompt is text: no element came from it, no handler ran.
  const hostile = seen.scenes.find((s) => s.index === Number(hostileIndex));
  check(hostile && hostile.prompt.includes("<script>") && hostile.prompt.includes("<img src=x onerror="),
    "hostile prompt shown as text");
  seen.xss = await app.evaluate(() => ({
    flag: window.__xss === undefined ? null : window.__xss,
    scripts: document.querySelectorAll("script").length,
    onerrorImgs: document.querySelectorAll("img[onerror]").length,
    srcX: [...document.querySelectorAll("img")].filter((i) => i.getAttribute("src") === "x").length,
  }));
  seen.hostXss = await page.evaluate(() => window.__xss === undefined ? null : window.__xss);
  seen.csp = await app.evaluate(() => document.querySelector('meta[http-equiv="Content-Security-Policy"]').content);

  await shoot(page, app, `${shots}/storyboard-desktop.png`);

  // Regenerate a scene with a provider chosen from the server's list and a new prompt.
  const card = app.locator(`.scene[data-index="${regenIndex}"]`);
  const before = await card.locator(".frames img").nth(1).getAttribute("data-uri");
  await card.locator("summary").click();
  seen.providerOptions = await card.locator("select option").evaluateAll((os) => os.map((o) => o.value));
  check(seen.providerOptions.includes(provider), "provider offered: " + provider);
  await card.locator("select").selectOption(provider);
  await card.locator("textarea").fill("A red fox crossing fresh snow at dawn, regenerated from the storyboard");
  await card.locator("input").fill("cold blue light");
  await card.locator("button").click();
  await card.screenshot({ path: `${shots}/storyboard-regenerating.png` }).catch(() => {});
  seen.progress = [];
  const started = Date.now();
  for (;;) {
    const text = await app.evaluate((i) => {
      const c = document.querySelector(`.scene[data-index="${i}"] .job span`);
      return c ? c.textContent : null;
    }, regenIndex);
    if (text && seen.progress[seen.progress.length - 1] !== text) seen.progress.push(text);
    const after = await app.evaluate((i) => {
      const img = document.querySelectorAll(`.scene[data-index="${i}"] .frames img`)[1];
      return img && img.complete && img.naturalWidth > 0 ? img.dataset.uri : null;
    }, regenIndex);
    if (after && after !== before) { seen.regenerated = { before, after, seconds: (Date.now() - started) / 1000 }; break; }
    check(Date.now() - started < 120000, "the new frame appeared within 120 s");
    await new Promise((r) => setTimeout(r, 150));
  }
  seen.regeneratedPrompt = await app.$eval(`.scene[data-index="${regenIndex}"] .prompt`, (n) => n.textContent);
  seen.toolCalls = await page.evaluate(() => window.toolCalls.map((c) => c.name));
  seen.regenCall = await page.evaluate(() => window.toolCalls.find((c) => c.name === "generate_scene"));
  // Remake the thumbnail and re-synthesize the narration from the app: each a job followed to its end.
  const thumbBefore = await app.$eval("img.thumb-phone", (i) => i.dataset.asset);
  const thumb = app.locator("#thumbnail");
  await thumb.locator("summary").click();
  await thumb.locator("input").first().fill("Keeper of the light");
  await thumb.locator("button").click();
  await app.waitForFunction((n) => {
    const i = document.querySelector("img.thumb-phone");
    return i && i.complete && i.naturalWidth > 0 && i.dataset.asset !== n
      && document.querySelector("#thumbnail details input").value === "Keeper of the light";
  }, thumbBefore, { timeout: 60000 });
  const narr = app.locator("#narration");
  await narr.locator("summary").click();
  await narr.locator("textarea").nth(3).fill("Night falls, and the light begins its work.");
  await narr.locator("button").click();
  await app.waitForFunction(() => {
    const n = document.querySelector('.scene[data-index="4"] .narr');
    return n && n.textContent.includes("the light begins its work");
  }, null, { timeout: 60000 });
  seen.sceneFourWords = await app.$$eval('.scene[data-index="4"] .word', (ws) => ws.length);
  // Scene 2 and the narration were made after the assembly: the final video says it is out of date.
  seen.staleNote = await app.$eval("#final .stale", (n) => n.textContent).catch(() => null);
  seen.toolCalls = await page.evaluate(() => window.toolCalls.map((c) => c.name));
  await shoot(page, app, `${shots}/storyboard-desktop-after.png`);
  await desktop.context.close();

  // Narrow, opened by a generating tool's result (a job envelope) instead of review_video: the view follows
  // the job through the bridge, then shows the storyboard with the new scene.
  const agentCall = { video_id: "coast", scene_index: 6, prompt: "A harbour at night, opened from generate_scene",
    providers: [provider], fresh: true, wait_seconds: 0 };
  const narrowUrl = hostUrl.split("?")[0] + "?tool=generate_scene&args=" + encodeURIComponent(JSON.stringify(agentCall));
  const narrow = await openStoryboard(browser, 380, narrowUrl);
  await narrow.app.waitForFunction(() => {
    const p = document.querySelector('.scene[data-index="6"] .prompt');
    return p && p.textContent.startsWith("A harbour at night");
  }, null, { timeout: 60000 });
  seen.narrowOpenedBy = await narrow.page.evaluate(() => window.toolCalls.map((c) => c.name));
  seen.narrowLog = await narrow.page.evaluate(() => window.hostLog.slice(0, 3));
  seen.narrowScrollWidth = await narrow.app.evaluate(() => document.documentElement.scrollWidth);
  await shoot(narrow.page, narrow.app, `${shots}/storyboard-narrow.png`);
  await narrow.context.close();
} catch (err) {
  seen.error = String(err && err.stack || err);
  process.exitCode = 1;
} finally {
  await browser.close();
  process.stdout.write(JSON.stringify(seen) + "\n");
}
