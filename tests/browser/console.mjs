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

async function signIn(name, at = base) {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${at}/`);
  check(page.url().endsWith('/login'), `${name}: the console asks to sign in first`);
  await page.fill('#name', name);
  await page.fill('#password', password);
  await page.click('button[type=submit]');
  const signedIn = new URL(page.url()).pathname === '/';
  check(signedIn, `${name}: signed in` + (signedIn ? '' : ` (${page.url()} ${(await page.textContent('main')).replace(/\s+/g, ' ').slice(0, 300)})`));
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
  const repeat = await page.textContent('#ladder-pyramid table.trend.repeat');
  check(repeat.includes('#2 (2026-10-31)') && repeat.includes('95.7%'), 'dashboard: the repeat-purchase trend (as `stratum report`)');
  check((await page.textContent('#ladder-pyramid table.trend.churn')).includes('4.7%'), 'dashboard: the churn trend');
  await page.click('nav.pages a[href="/?ladder=lifecycle"]');
  check((await page.textContent('main h2')).startsWith('lifecycle'), 'dashboard: another ladder from the switch');
  await inspect(page, 'dashboard-lifecycle');
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
  await page.click('form.compare button');
  check((await page.textContent('main')).includes('pyramid: 69 up, 0 down, 0 new, 0 gone'), 'compare: runs #1 and #2, as `stratum diff`');
  const download = page.waitForEvent('download');
  await page.click('a[href$="format=csv"]');
  check((await (await download).suggestedFilename()) === 'moves-1-2.csv', 'compare: the moves exported as CSV');
  await inspect(page, 'compare');
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

// An analyst: a what-if on the policy page, a run started and followed to its end, the
// pages in Chinese.
{
  const { context, page } = await signIn('ana');
  await page.click('header a[href="/policy"]');
  check((await page.textContent('table#policy-pyramid')).includes('the next top 1% by composite'), 'policy: the pyramid rules');
  await inspect(page, 'policy');
  const draft = await page.inputValue('#draft');
  await page.fill('#draft', draft.replace('top_share = 0.01', 'top_share = 0.02'));
  await page.click('form[action="/policy/what-if"] button');
  const outcome = await page.textContent('div.outcome');
  check(outcome.includes('pyramid: 48 up, 0 down'), 'what-if: 48 customers would move up into a 2% key level');
  check(outcome.includes('493,800 → 580,200 (+86,400)'), 'what-if: and the benefits would cost 86,400 more');
  check(await page.locator('div.outcome svg.heatmap g[data-from="major"][data-to="key"][data-customers="18"]').count() === 1,
        'what-if: the matrix has the 18 majors who would become key');
  await inspect(page, 'what-if');
  await page.goto(`${base}/pipeline?from=2026-10-01&to=2026-10-31`);
  const funnel = await page.textContent('table.funnel');
  check(funnel.includes('key-3') && funnel.includes('ordinary-3'), 'reports: the funnel by class for October');
  await inspect(page, 'pipeline-reports');
  await page.click('header a[href="/runs"]');
  await page.click('form.start-run button');
  await page.waitForSelector('section.job[data-finished="true"]', { timeout: 60000 });
  check((await page.textContent('section.job h2')).startsWith('#4 ✓'), 'runs: the run started here finished as #4 (#3 is the segments policy run)');
  check((await page.textContent('section.job ol')).includes('scoring and placing'), 'runs: its stages listed');
  check((await page.textContent('table.runs')).includes('#4'), 'runs: #4 recorded');
  await inspect(page, 'run-started');
  await page.click('header a[lang="zh"]');
  const zh = await page.textContent('header');
  check(zh.includes('客户') && zh.includes('分级策略'), 'Chinese: the header');
  await page.goto(`${base}/`);
  const pyramidZh = await page.locator('#ladder-pyramid svg.pyramid').first().textContent();
  check(pyramidZh.includes('关键客户: 23 (1.1%)') || pyramidZh.includes('关键客户: '), 'Chinese: the levels as the policy labels them');
  check((await page.textContent('main')).includes('截至 2026年10月31日'), 'Chinese: dates as Chinese writes them');
  await inspect(page, 'dashboard-zh');
  await page.goto(`${base}/customers/C00042`);
  await inspect(page, 'customer-card-zh');
  await context.close();
}

// An agent: its own customer opens, another agent's is refused.
{
  const { context, page } = await signIn('rep09');
  let answer = await page.goto(`${base}/customers/C00042`);
  check(answer.status() === 200, 'agent rep09: opens its own customer C00042');
  const gap = await page.textContent('table.levels');
  check(gap.includes('needs 10.36 more composite for key (has 79.95, the lowest in key now has 90.31)'),
        'card: the next-level gap, as `stratum explain` says it');
  check((await page.textContent('table.score-breakdown')).includes('52.26'), 'card: the score breakdown (profit_12m 52.26 points)');
  await page.click('header a[href="/customers"]');
  await page.fill('#q', 'C000');
  await page.selectOption('#level', 'major');
  await page.click('form.search button');
  const found = await page.textContent('table.found');
  check(found.includes('yours only') && found.includes('C00042'), 'agent search: narrowed to its own major customers');
  check(!found.includes('rep04'), "agent search: no other agent's customer");
  answer = await page.goto(`${base}/customers/C00003`);
  check(answer.status() === 403, "agent rep09: refused rep04's customer C00003");
  check((await page.textContent('body')).includes('customer C00003 is not one of yours'), 'agent: says why');
  answer = await page.goto(`${base}/admin`);
  check(answer.status() === 403, 'agent rep09: refused the admin page');
  await context.close();
}

// A rep works through Monday November 2nd's list: three calls logged (each contract sent:
// class 5), the list shrinks and its funnel shows them entering class 5.
{
  const { context, page } = await signIn('rep01');
  const period = `${base}/pipeline?from=2026-10-01&to=2026-11-02`;
  const enteredFive = async () => {
    await page.goto(period);
    return Number(await page.textContent('table.funnel tr[data-row="5"] td:nth-of-type(2)'));
  };
  const fiveBefore = await enteredFive();
  await page.click('header a[href="/calls"]');
  await page.goto(`${base}/calls?date=2026-11-02`);
  const rows = () => page.locator('table.calls tbody tr').count();
  const before = await rows();
  check(before === 9, `calls: rep01 has 9 calls on Monday 2026-11-02 (got ${before})`);
  await inspect(page, 'calls');
  for (let i = 1; i <= 3; i++) {
    const row = page.locator('table.calls tbody tr').first();
    const customer = await row.getAttribute('data-customer');
    await row.locator('select[name=outcome]').selectOption('reached');
    await row.locator('select[name=intent]').selectOption('good');
    await row.locator('select[name=class]').selectOption('5');
    await row.locator('input[name=next_contact]').fill('2026-11-09');
    await row.locator('button[type=submit]').click();
    check(await rows() === before - i, `calls: ${customer} logged, ${before - i} left`);
    check(await page.locator(`table.calls tr[data-customer="${customer}"]`).count() === 0, `calls: ${customer} is off the list`);
  }
  const fiveAfter = await enteredFive();
  check(fiveAfter === fiveBefore + 3, `reports: rep01's funnel has the three entering class 5 (${fiveBefore} → ${fiveAfter})`);
  const activity = await page.textContent('table.activity');
  check(activity.includes('rep01') && !activity.includes('rep02'), 'reports: a rep sees its own activity only');
  check(await page.locator('a.export[href^="/pipeline/export?report=weeks"]').count() === 1, 'reports: each downloads as CSV');
  await inspect(page, 'pipeline-rep');
  const week = await page.goto(`${base}/calls?date=2026-11-09`);
  check(week.status() === 200 && (await page.textContent('table.calls')).includes('good'), 'calls: the three come back on the date set, with their intent');
  await context.close();
}

// A team lead: picks a member's list, sees the team's escalations and customers, nobody else's.
{
  const { context, page } = await signIn('lead01');
  let answer = await page.goto(`${base}/calls?rep=rep02&date=2026-11-20`);
  check(answer.status() === 200, 'lead01: opens rep02\'s list');
  check(await page.locator('select#rep option').count() === 5, 'lead01: picks among itself and its four reps');
  const escalations = await page.textContent('table.escalations');
  check(escalations.includes('rep02') && escalations.includes('rep04') && !escalations.includes('rep05'),
        'lead01: the escalations of its team, not of another');
  await inspect(page, 'calls-lead');
  const member = await page.locator('table.calls tbody tr').first().getAttribute('data-customer');
  check((await page.goto(`${base}/customers/${member}`)).status() === 200, `lead01: opens rep02's customer ${member}`);
  check((await page.goto(`${base}/customers/C00042`)).status() === 403, "lead01: refused rep09's customer");
  check((await page.goto(`${base}/calls?rep=rep09`)).status() === 403, "lead01: refused rep09's list");
  await page.goto(`${base}/pipeline?from=2026-10-01&to=2026-10-31`);
  const reps = await page.textContent('table.weeks');
  check(reps.includes('rep03') && !reps.includes('rep05'), 'lead01: plan against actual for its team');
  await context.close();
}

// An admin applies the key-account plan: the key customers get their managers as owners.
{
  const { context, page } = await signIn('demo');
  await page.goto(`${base}/assignments`);
  check((await page.textContent('table.loads')).includes('km01'), 'assignments: the managers and their loads');
  check(await page.locator('table.moves tbody tr').count() > 0, 'assignments: who moves and why');
  await inspect(page, 'assignments');
  await page.click('form.apply button');
  check(await page.locator('table.moves').count() === 0, 'assignments: applied, nobody left to move');
  const loads = await page.$$eval('table.loads tbody tr', rows =>
    rows.map(r => [...r.querySelectorAll('td')].map(td => td.textContent.trim())));
  check(loads.length === 3 && loads.every(([, , planned, now]) => planned === now && Number(now) > 0),
        `assignments: every manager now holds its planned customers (${JSON.stringify(loads)})`);
  await context.close();
}

// A service user (a desk's shared screen): reads any customer, no runs or admin pages.
{
  const { context, page } = await signIn('ivr');
  check((await page.goto(`${base}/customers/C00003`)).status() === 200, 'service ivr: opens any customer');
  check((await page.goto(`${base}/runs`)).status() === 403, 'service ivr: refused the runs page');
  await context.close();
}

// The behaviour segments policy (k-means clusters as levels), served by a second server:
// its dashboard draws every cluster's centre per feature.
{
  const segments = process.env.STRATUM_SEGMENTS_URL;
  check(Boolean(segments), 'segments: the test runner gave the second server');
  const { context, page } = await signIn('demo', segments);
  const chart = page.locator('svg.centres');
  check(await chart.count() === 1, 'segments dashboard: the cluster centres chart');
  check(await chart.locator('g.feature').count() === 3, 'segments dashboard: a panel per feature');
  check(await chart.locator('g.centre').count() === 12, 'segments dashboard: a bar per cluster and feature');
  const revenue = chart.locator('g.feature[data-feature="revenue_12m"] g.centre[data-level="Champions"]');
  check(await revenue.getAttribute('data-value') === '18,200', 'segments dashboard: champions spend 18,200 a year on average');
  await inspect(page, 'segments-dashboard');
  await context.close();
}

await browser.close();
if (failures > 0) {
  console.error(`${failures} check(s) failed`);
  process.exit(1);
}
console.log('all browser checks passed');
