// Headless Chromium against the audit server: load the questionnaire, answer every question, submit, and
// land on the report page. The upstream's answer carries <script>, <img onerror=...> and a javascript:
// link; none may run or survive into the page.
//   node check.mjs <server base URL> <screenshot.png>
import puppeteer from 'puppeteer-core';

const [base, shot] = process.argv.slice(2);
const fail = (what) => { console.log('FAIL: ' + what); process.exitCode = 1; };
const ok = (what) => console.log('ok: ' + what);

const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-dev-shm-usage'],
});
try {
  const page = await browser.newPage();
  await page.setViewport({ width: 900, height: 1200 });
  const dialogs = [];
  page.on('dialog', async (d) => { dialogs.push(d.message()); await d.dismiss(); });
  await page.goto(base + '/?lang=en', { waitUntil: 'load' });
  const names = await page.$$eval('input[type=radio]', (els) => [...new Set(els.map((e) => e.name))]);
  if (names.length === 12) ok('the questionnaire shows 12 questions'); else fail(`expected 12 questions, found ${names.length}`);
  // The best answer to half the questions, the second best to the rest: a report with some gaps.
  for (const [i, n] of names.entries()) {
    const options = await page.$$(`input[type=radio][name="${n}"]`);
    await options[Math.min(i % 2, options.length - 1)].click();
  }
  await Promise.all([page.waitForNavigation({ waitUntil: 'load', timeout: 60000 }), page.click('#submit')]);
  const url = page.url();
  if (url.includes('/report/')) ok('submitting the form leads to the report page'); else fail('not on a report page: ' + url);
  const heading = await page.$eval('h1', (h) => h.textContent).catch(() => '');
  if (/\d+\s*\/\s*100/.test(heading)) ok('the report page shows the score: ' + heading.trim()); else fail('no score in the heading: ' + heading);
  const rendered = await page.$$eval('article h2', (els) => els.length);
  if (rendered > 0) ok('the model\'s Markdown is rendered (headings)'); else fail('the report body has no rendered headings');
  const flag = await page.evaluate(() => window.__xss);
  if (flag === undefined) ok('no script from the model output ran (window.__xss unset)'); else fail('window.__xss = ' + flag);
  const live = await page.$$eval('article script, article [onerror], article a[href^="javascript:"]', (els) => els.length);
  if (live === 0) ok('no <script>, onerror or javascript: link survived into the report'); else fail(`${live} live elements from model output`);
  if (dialogs.length === 0) ok('no dialog opened'); else fail('dialogs: ' + dialogs.join(', '));
  await page.screenshot({ path: shot, fullPage: true });
  ok('screenshot: ' + shot);
} finally {
  await browser.close();
}
