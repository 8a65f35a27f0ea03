import { chromium } from 'playwright-core';
const base = 'http://127.0.0.1:7788';
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox','--disable-gpu'] });
const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
const page = await ctx.newPage();
await page.goto(base + '/login');
await page.fill('#name', process.argv[2] ?? 'demo'); await page.fill('#password', 'stratum-demo-1');
await page.click('button[type=submit]');
for (const [name, path] of JSON.parse(process.argv[3])) {
  await page.goto(base + path);
  await page.screenshot({ path: `/tmp/cw/${name}.png`, fullPage: true });
}
await browser.close();
