// The console in real Chromium: signs in as each role, checks what each page shows on the
// demo workspace, saves a screenshot of every page and runs axe-core on it. Started by
// crates/cli/tests/browser.rs with the server's address and the demo's logins in the
// environment; exits non-zero on the first failed check.
import { chromium } from 'playwright-core';
import { readFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';

const base = process.env.STRATUM_URL;
const artifacts = process.env.STRATUM_ARTIFACTS ?? 'artifacts';
const password = process.env.STRATUM_PASSWORD;
mkdirSync(artifacts, { recursive: true });
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync'],
});
let failures = 0;
const check = (ok, what) => {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failures += 1;
};

/** Screenshot and accessibility check of the page as it is now. */
async function inspect(page, name) {
  await page.screenshot({ path: `${artifacts}/${name}.png`, fullPage: true });
  await page.addScriptTag({ content: axeSource });
  const result = await page.evaluate(async () => await globalThis.axe.run());
  const bad = result.violations.filter(v => v.impact === 'serious' || v.impact === 'critical');
  check(bad.length === 0, `${name}: no serious or critical accessibility violation` +
    (bad.length ? ` (${bad.map(v => v.id).join(', ')})` : ''));
}

async function signIn(name) {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${base}/`);
  check(page.url().endsWith('/login'), `${name}: the console asks to sign in first`);
  await page.fill('#name', name);
  await page.fill('#password', password);
  await page.click('button[type=submit]');
  check(new URL(page.url()).pathname === '/', `${name}: signed in`);
  return { context, page };
}

// An admin: the dashboard with the demo's exact counts, a customer card.
{
  const { context, page } = await signIn('demo');
  await inspect(page, 'login-then-dashboard');
  const text = await page.textContent('main');
  check(text.includes('Serving run #2 as of 2026-10-31 (2,000 customers).'), 'dashboard: the served run');
  check(text.includes('The top 20% of customers by profit_12m hold 86.0% of it.'), 'dashboard: the Pareto figure');
  const pyramid = await page.locator('#ladder-pyramid svg.pyramid').first().textContent();
  for (const level of ['key: 23 (1.1%)', 'major: 396 (19.8%)', 'ordinary: 620 (31.0%)', 'small: 961 (48.0%)']) {
    check(pyramid.includes(level), `dashboard: pyramid shows ${level}`);
  }
  const pyramidSection = await page.textContent('#ladder-pyramid');
  check(pyramidSection.includes('Since run #1: 69 up, 0 down'), 'dashboard: the moves since the previous run (as `stratum diff`)');
  const heat = page.locator('#ladder-pyramid svg.heatmap');
  check(await heat.locator('g[data-from="ordinary"][data-to="major"][data-customers="21"]').count() === 1,
        'dashboard: the heat map has the 21 who went from ordinary to major');
  check((await page.textContent('#ladder-pyramid table.movers')).includes('C00001'), 'dashboard: the upgraded list links C00001');
  await page.click('header a[href="/customers"]');
  await page.fill('#q', 'C0000');
  await page.click('form[action="/customers"] button');
  await inspect(page, 'customers');
  await page.click('a[href="/customers/C00003"]');
  const card = await page.textContent('main');
  check(card.includes('Customer C00003'), 'card: opened from the search');
  check(card.includes("pinned by manual override (board member's company — demo, until 2026-12-31); the rules alone gave ordinary"),
        'card: the explanation of the pinned level');
  check(/Airport VIP lounge\s*unlimited\s*0\s*unlimited/.test(card), "card: the lounge unused, unlimited left");
  await inspect(page, 'customer-card');
  // Redeem the lounge and see the quota used; cancel it and see it restored.
  const lounge = page.locator('table.benefits tr', { hasText: 'Airport VIP lounge' });
  await lounge.getByRole('button', { name: 'Redeem one' }).click();
  check(/Airport VIP lounge\s*unlimited\s*1\s*unlimited/.test(await page.textContent('table.benefits')),
        'card: redeemed, the lounge used once');
  check((await page.textContent('table.redemptions')).includes('active'), 'card: the redemption listed as active');
  await inspect(page, 'customer-card-redeemed');
  await page.locator('table.redemptions').getByRole('button', { name: 'Cancel' }).click();
  check(/Airport VIP lounge\s*unlimited\s*0\s*unlimited/.test(await page.textContent('table.benefits')),
        'card: cancelled, the use given back');
  check((await page.textContent('table.redemptions')).includes('cancelled'), 'card: the redemption listed as cancelled');
  await page.click('header a[href="/runs"]');
  check((await page.textContent('table.runs')).includes('served'), 'runs: the served run marked');
  await inspect(page, 'runs');
  await page.click('header a[href="/admin"]');
  await page.fill('#action', 'login');
  await page.click('form[action="/admin"] button');
  check((await page.textContent('table.audit')).includes('login'), 'admin: the sign-in in the audit log');
  await inspect(page, 'admin');
  // Signing out ends the session: the card asks to sign in again.
  await page.click('header button[type=submit]');
  await page.goto(`${base}/customers/C00003`);
  check(page.url().endsWith('/login'), 'signed out: refused, sent to sign in');
  await inspect(page, 'login');
  await context.close();
}

// An agent: its own customer opens, another agent's is refused.
{
  const { context, page } = await signIn('rep09');
  let answer = await page.goto(`${base}/customers/C00042`);
  check(answer.status() === 200, 'agent rep09: opens its own customer C00042');
  answer = await page.goto(`${base}/customers/C00003`);
  check(answer.status() === 403, "agent rep09: refused rep04's customer C00003");
  check((await page.textContent('body')).includes('customer C00003 is not one of yours'), 'agent: says why');
  answer = await page.goto(`${base}/admin`);
  check(answer.status() === 403, 'agent rep09: refused the admin page');
  await context.close();
}

await browser.close();
if (failures > 0) {
  console.error(`${failures} check(s) failed`);
  process.exit(1);
}
console.log('all browser checks passed');
