// Drives busgate's web page in headless Chromium: signs in with the token, finds the name a test client
// owns, sets a monitor filter, has the client emit a signal and waits for it in the monitor; saves a
// screenshot. Usage: node web-page.js URL TOKEN NAME EMIT_FIFO SCREENSHOT
"use strict";
const fs = require("fs");
const { chromium } = require("playwright-core");

const [url, token, name, fifo, screenshot] = process.argv.slice(2);

function check(description, condition) {
  console.log(`${condition ? "ok" : "not ok"} - page: ${description}`);
  if (!condition) {
    process.exitCode = 1;
  }
}

(async () => {
  const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", headless: true });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(url);
    await page.waitForSelector("#login:not([hidden])", { timeout: 10000 });
    check("asks for the token before showing anything", (await page.locator("#names tbody tr").count()) === 0);
    await page.fill("#token", token);
    await Promise.all([page.waitForNavigation(), page.click("#login button")]);
    await page.waitForFunction((n) => [...document.querySelectorAll("#names td")].some((td) => td.textContent === n),
                               name, { timeout: 10000 });
    check(`lists the name ${name}`, true);
    const connections = await page.locator("#connections tbody tr").count();
    check("lists connections", connections >= 1);
    await page.fill("#filter", "type='signal',interface='org.busgate.WebTest'");
    await page.check("#bodies");
    await page.click("#filter-form button[type=submit]");
    await page.waitForFunction(() => document.getElementById("monitor-status").textContent.includes("org.busgate.WebTest"),
                               null, { timeout: 10000 });
    check("the monitor took the filter", true);
    fs.writeFileSync(fifo, "from-the-page-test\n");
    await page.waitForFunction(() => [...document.querySelectorAll("#events tbody tr")].some(
      (row) => row.textContent.includes("org.busgate.WebTest.Hello") && row.textContent.includes("from-the-page-test")),
      null, { timeout: 10000 });
    check("the monitor shows the signal the test sent, with its body", true);
    const other = await page.locator("#events tbody tr", { hasText: "NameAcquired" }).count();
    check("the filter keeps other messages out", other === 0);
    await page.screenshot({ path: screenshot, fullPage: true });
    check(`screenshot saved to ${screenshot}`, fs.statSync(screenshot).size > 0);
  } catch (error) {
    check(`page test: ${error.message}`, false);
  } finally {
    await browser.close();
  }
})();
