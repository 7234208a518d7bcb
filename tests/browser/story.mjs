// The story of issue 9 §4 in a real headless browser (Debian's chromium, driven by
// playwright-core): a parent at the demo partner app, Poortwachter's login and consent, "Mijn
// apps", the school's and the platform's consoles. Every page visited is checked with axe-core
// (no violation of impact serious or critical), photographed at phone and desktop width, and
// may load nothing from another origin. Started by tests/it/browser.rs, which sets:
//   ISSUER, PARTNER_URL, API_URL   where Poortwachter and the demo apps listen
//   SERVER_TIME                    the server's clock (unix seconds; it stands still in tests)
//   SCREENSHOT_DIR                 where the screenshots go
//   CHROMIUM                       the browser (default /usr/bin/chromium)
import { chromium } from 'playwright-core';
import { createHmac } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const AXE_SOURCE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

function env(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (this script is started by tests/it/browser.rs)`);
  return value;
}
const ISSUER = env('ISSUER');
const PARTNER = env('PARTNER_URL');
const API = env('API_URL');
const SERVER_TIME = Number(env('SERVER_TIME'));
const SHOTS = env('SCREENSHOT_DIR');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const PASSWORD = 'welkom-demo-2026';
const CLOSURE_REASON = 'Toetsweek: de cijfers komen na de toetsweek';

// The parts of the story by the pages they need; every one is in main and on. A branch that
// reworks those pages may switch its part off for a while: it is then reported as SKIPPED,
// loudly, and STORY_FEATURES=all (or a comma list of names) turns it on for one run.
const READY = {
  // /consent: a checkbox input[name=scope] per scope (branch `account`)
  consentScopes: true,
  // /account: a withdraw form per scope (hidden grant and scope) (branch `account`)
  accountScopes: true,
  // /account: "Wie keek mee" lists the partner's reads (branch `account`)
  wieKeekMee: true,
  // /school: link forms /school/links/{client_id}, closures form /school/closures (lead)
  schoolConsole: true,
  // /platform: suspend form /platform/partners/{client_id}/suspend (lead)
  platformConsole: true,
};
if (process.env.STORY_FEATURES) {
  const on = process.env.STORY_FEATURES.split(',');
  for (const key of Object.keys(READY)) READY[key] ||= on.includes('all') || on.includes(key);
}

/** RFC 6238 TOTP (SHA-1, 30 s, 6 digits) with RFC 4226 §5.3 dynamic truncation. */
function totp(base32, unixSeconds) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of base32.replace(/=+$/, '').toUpperCase()) {
    const v = alphabet.indexOf(c);
    if (v < 0) throw new Error(`not base32: ${c}`);
    bits += v.toString(2).padStart(5, '0');
  }
  const key = Buffer.alloc(Math.floor(bits.length / 8));
  for (let i = 0; i < key.length; i++) key[i] = parseInt(bits.slice(i * 8, i * 8 + 8), 2);
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(unixSeconds / 30)));
  const mac = createHmac('sha1', key).update(counter).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  const code = (mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000;
  return String(code).padStart(6, '0');
}
// RFC 6238 appendix B (the 20-byte key "12345678901234567890"), last 6 digits.
if (totp('GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ', 59) !== '287082') throw new Error('TOTP is broken');

/** A datetime-local value (Dutch time, as the school types it) `days` after the server's day. */
function localDate(days, time) {
  const moment = new Date((SERVER_TIME + days * 86400) * 1000);
  const day = new Intl.DateTimeFormat('sv-SE', { timeZone: 'Europe/Amsterdam' }).format(moment);
  return `${day}T${time}`;
}

const allowedOrigins = new Set([new URL(ISSUER).origin, new URL(PARTNER).origin]);
const foreign = [];
const cspViolations = [];
const checked = [];
const skipped = [];
let shot = 0;

mkdirSync(SHOTS, { recursive: true });
// Dutch, as the schools' people see it (date fields follow the browser's language).
const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--lang=nl-NL'] });

async function person() {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'nl-NL' });
  // Generous: in CI the story shares two cores with the rest of the test suite.
  context.setDefaultTimeout(30_000);
  context.on('request', (request) => {
    const url = new URL(request.url());
    if (!['data:', 'about:'].includes(url.protocol) && !allowedOrigins.has(url.origin)) {
      foreign.push(request.url());
    }
  });
  const page = await context.newPage();
  page.on('console', (message) => {
    if (message.type() === 'error' && /Content Security Policy/i.test(message.text())) {
      cspViolations.push(`${page.url()}: ${message.text()}`);
    }
  });
  return page;
}

/** axe-core on the page as it is, then a screenshot at phone and at desktop width. */
async function check(page, name) {
  await page.waitForLoadState('load');
  // Evaluated through the DevTools protocol, which the page's CSP (no inline script) does
  // not govern: the page is checked exactly as a visitor gets it, CSP and all.
  await page.evaluate(AXE_SOURCE);
  const results = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  const bad = results.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  if (bad.length > 0) {
    const details = bad
      .map((v) => `  ${v.impact} ${v.id}: ${v.help}\n${v.nodes.map((n) => `    ${n.target.join(' ')}`).join('\n')}`)
      .join('\n');
    throw new Error(`axe-core on ${name} (${page.url()}):\n${details}`);
  }
  shot += 1;
  const base = `${SHOTS}/${String(shot).padStart(2, '0')}-${name}`;
  for (const [label, width, height] of [['phone', 390, 844], ['desktop', 1280, 900]]) {
    await page.setViewportSize({ width, height });
    await page.screenshot({ path: `${base}-${label}.png`, fullPage: true });
  }
  const minor = results.violations.length - bad.length;
  checked.push(name);
  console.log(`ok  ${name}  ${page.url()}${minor ? `  (${minor} minor/moderate axe findings)` : ''}`);
}

function skip(step) {
  skipped.push(step);
  console.log(`SKIPPED (not in main yet): ${step}`);
}

function expect(condition, message) {
  if (!condition) throw new Error(message);
}

async function text(page, selector) {
  return (await page.locator(selector).innerText()).trim();
}

async function sectionState(page, id) {
  return page.locator(`#${id}`).getAttribute('class');
}

/** From the partner's home page through login (and consent) back to the partner. */
async function signInAtPartner(page, username, { child, untick = [], shots = false } = {}) {
  await page.goto(`${PARTNER}/`);
  if (shots) await check(page, 'partner-start');
  await page.click('#login');
  await page.waitForSelector('input[name=password]');
  expect(page.url().startsWith(ISSUER), `login should be at Poortwachter, is at ${page.url()}`);
  if (shots) await check(page, 'login');
  await page.selectOption('#school', '12AB');
  await page.fill('#username', username);
  await page.fill('#password', PASSWORD);
  await Promise.all([page.waitForURL((u) => u.pathname.startsWith('/consent')), page.click('form button[type=submit]')]);
  await page.waitForSelector('button[name=decision][value=approve]');
  if (child) await page.check(`input[name=student][value="${child}"]`);
  for (const scope of untick) await page.uncheck(`input[name=scope][value="${scope}"]`);
  if (shots) await check(page, 'consent');
  await Promise.all([
    page.waitForURL((u) => u.origin === new URL(PARTNER).origin && u.pathname === '/'),
    page.click('button[name=decision][value=approve]'),
  ]);
}

/** Log in at the console: password, then the TOTP code at the server's time. */
async function consoleLogin(page, school, username, secret, name) {
  await page.goto(`${ISSUER}/console/login`);
  await check(page, `${name}-login`);
  await page.selectOption('#school', school);
  await page.fill('#username', username);
  await page.fill('#password', PASSWORD);
  await Promise.all([page.waitForURL((u) => u.pathname === '/console/totp'), page.click('form button[type=submit]')]);
  await check(page, `${name}-totp`);
  await page.fill('#code', totp(secret, SERVER_TIME));
  const [response] = await Promise.all([
    page.waitForResponse((r) => new URL(r.url()).pathname === '/console/totp' && r.request().method() === 'POST'),
    page.click('form button[type=submit]'),
  ]);
  const location = response.headers()['location'];
  if (!(response.status() === 303 && location)) {
    throw new Error(`the TOTP code was not accepted: ${response.status()} ${await response.text()}`);
  }
  // Where the console sends this user (/school or /platform); the caller waits for it to load.
  return new URL(location, ISSUER).pathname;
}

/** Wait until `page` shows `path` of ours, loaded. */
async function arrive(page, path) {
  await page.waitForURL((u) => u.origin === new URL(ISSUER).origin && u.pathname === path);
  await page.waitForLoadState('load');
}

/** Submit the form matching `selector` after filling the named fields that it has. */
async function submit(page, selector, fields = {}) {
  const form = page.locator(selector).first();
  await form.waitFor();
  for (const [name, value] of Object.entries(fields)) {
    const field = form.locator(`[name="${name}"]`);
    const count = await field.count();
    if (count === 0) throw new Error(`${selector} has no field ${name}`);
    const tag = await field.first().evaluate((e) => `${e.tagName.toLowerCase()}:${e.type || ''}`);
    if (tag.startsWith('select')) await field.first().selectOption(String(value));
    else if (tag.endsWith(':checkbox') || tag.endsWith(':radio')) {
      for (const v of [].concat(value)) await form.locator(`[name="${name}"][value="${v}"]`).check();
    } else if (!tag.endsWith(':hidden')) await field.first().fill(String(value));
  }
  // A form post answers with a redirect (303) to the page that shows the result.
  await Promise.all([
    page.waitForNavigation({ waitUntil: 'load' }),
    form.locator('button[type=submit], button:not([type])').first().click(),
  ]);
}

try {
  // 1. A parent starts at the partner app, logs in, picks Jan, unticks cijfers, consents.
  const parent = await person();
  await signInAtPartner(parent, 'p.devries', {
    child: '100001',
    untick: READY.consentScopes ? ['cijfers'] : [],
    shots: true,
  });
  if (!READY.consentScopes) skip('untick cijfers on the consent page');
  await check(parent, 'partner-signed-in');
  expect((await text(parent, '#naam')).includes('Jan'), 'the partner app shows Jan');
  expect((await sectionState(parent, 'rooster')) === 'data', 'the partner app shows the timetable');
  expect((await parent.locator('#rooster tbody tr').count()) > 0, 'the timetable has lessons');
  if (READY.consentScopes) {
    expect((await sectionState(parent, 'cijfers')) === 'refused', 'cijfers was not given');
  }

  // 2. The parent withdraws huiswerk in /account; the partner app no longer gets homework.
  await parent.goto(`${ISSUER}/account`);
  await check(parent, 'account');
  if (READY.accountScopes) {
    await submit(parent, 'form[action="/account/withdraw"]:has(input[name=scope][value=huiswerk])');
    await check(parent, 'account-after-withdrawal');
    await parent.goto(`${PARTNER}/`);
    await check(parent, 'partner-without-huiswerk');
    expect((await sectionState(parent, 'huiswerk')) === 'refused', 'no homework after the withdrawal');
    expect((await sectionState(parent, 'rooster')) === 'data', 'still the timetable');
  } else {
    skip('withdraw huiswerk only, in /account');
  }

  // 3. "Wie keek mee" lists the partner's reads.
  if (READY.wieKeekMee) {
    // Reads are counted in memory and written every few seconds: look again until they show.
    for (let tries = 0; ; tries++) {
      await parent.goto(`${ISSUER}/account`);
      if ((await parent.locator('table.reads').count()) > 0 || tries >= 20) break;
      await parent.waitForTimeout(500);
    }
    const reads = await text(parent, 'table.reads');
    expect(reads.includes('Studyspace'), `Wie keek mee lists Studyspace: ${reads}`);
    await check(parent, 'wie-keek-mee');
  } else {
    skip('"Wie keek mee" lists the partner\'s reads');
  }

  // 4. The supervisor (password and TOTP) closes the link; the partner's next call fails.
  const supervisor = await person();
  const school = await consoleLogin(supervisor, '12AB', 'beheer', 'POORTWACHTERDEMOBEHEERSCHOOLTOTP', 'console-supervisor');
  expect(school === '/school', `after TOTP the supervisor is sent to /school, not ${school}`);
  if (READY.schoolConsole) {
    await arrive(supervisor, '/school');
    await check(supervisor, 'school');
    await submit(supervisor, 'form[action="/school/links/studyspace-demo"]:has([name=open][value=false])', {
      reason: 'Contract wordt herzien',
    });
    await check(supervisor, 'school-link-closed');
    await parent.goto(`${PARTNER}/`);
    await check(parent, 'partner-link-closed');
    expect((await parent.locator('#ended').count()) === 1, 'the partner app says access has ended');
    expect((await sectionState(parent, 'rooster')) === 'ended', 'no timetable while the link is closed');

    // 5. The link opens again, and the school closes cijfers for partners: a student who
    //    shares cijfers sees them withheld with the school's reason.
    await supervisor.goto(`${ISSUER}/school`);
    await submit(supervisor, 'form[action="/school/links/studyspace-demo"]:has([name=open][value=true])', {
      reason: 'Contract verlengd',
    });
    await supervisor.goto(`${ISSUER}/school/closures`);
    await check(supervisor, 'school-closures');
    await submit(supervisor, 'form[action="/school/closures"]', {
      scope: 'cijfers',
      audiences: ['partners'],
      starts_at: localDate(0, '00:00'),
      ends_at: localDate(7, '18:00'),
      reason: CLOSURE_REASON,
    });
    await check(supervisor, 'school-closure');
    const sara = await person();
    await signInAtPartner(sara, '100002');
    await check(sara, 'partner-closure');
    expect((await sectionState(sara, 'cijfers')) === 'refused', 'cijfers withheld');
    const cijfers = await text(sara, '#cijfers');
    expect(cijfers.includes(CLOSURE_REASON), `the school's reason is shown: ${cijfers}`);
    expect((await sectionState(sara, 'rooster')) === 'data', 'the timetable still comes');
  } else {
    skip('/school: close the link, reopen it, add a cijfers closure for partners');
  }

  // 6. The operator suspends the partner in /platform; it can no longer start a login.
  const operator = await person();
  const platform = await consoleLogin(operator, '', 'operator', 'POORTWACHTERDEMOPLATFORMOPERATOR', 'console-operator');
  expect(platform === '/platform', `after TOTP the operator is sent to /platform, not ${platform}`);
  if (READY.platformConsole) {
    await arrive(operator, '/platform');
    await check(operator, 'platform');
    await submit(operator, 'form[action="/platform/partners/studyspace-demo/suspend"]', {
      reason: 'Audit loopt',
    });
    await check(operator, 'platform-suspended');
    const late = await person();
    await late.goto(`${PARTNER}/`);
    await late.click('#login');
    await late.waitForLoadState('load');
    expect(late.url().startsWith(ISSUER), `the refusal is Poortwachter's page: ${late.url()}`);
    expect((await late.locator('input[name=password]').count()) === 0, 'no login for a suspended partner');
    await check(late, 'login-refused-suspended');
  } else {
    skip('/platform: suspend the partner, then no login starts');
  }

  expect(foreign.length === 0, `resources from another origin:\n${foreign.join('\n')}`);
  expect(cspViolations.length === 0, `CSP violations:\n${cspViolations.join('\n')}`);
  // The school-data API is reached by the partner app only, never by the browser.
  expect(!foreign.some((u) => u.startsWith(API)), 'the browser never calls the school-data API');
  console.log(`story: ${checked.length} pages checked with axe-core, screenshots in ${SHOTS}`);
  if (skipped.length) console.log(`story: ${skipped.length} steps SKIPPED: ${skipped.join('; ')}`);
} catch (error) {
  console.error(`story failed: ${error.stack || error}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
