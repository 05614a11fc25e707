// Browser test of the web demo: node tools/browser_check.js URL SCREENSHOT.png
// Opens the app in headless Debian chromium, runs the first example, waits for the 3D viewer's canvas and saves a
// screenshot of the page and of the canvas (SCREENSHOT with -canvas before .png). Prints a JSON summary.
const { chromium } = require('playwright-core');

(async () => {
  const [url, shot] = process.argv.slice(2);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--use-gl=swiftshader', '--enable-unsafe-swiftshader', '--disable-quic',
      '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const page = await browser.newPage({ viewport: { width: 1400, height: 1100 } });
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(url, { waitUntil: 'load', timeout: 60000 });
  await page.getByRole('button', { name: 'Reconstruct' }).waitFor({ timeout: 60000 });
  await page.locator('.gallery-item, button.gallery-item, [data-testid="examples"] button').first().click();
  await page.getByRole('button', { name: 'Reconstruct' }).click();
  const canvas = page.locator('canvas').first();
  await canvas.waitFor({ state: 'visible', timeout: 90000 });
  await page.waitForTimeout(4000); // let the viewer load the GLB and draw
  await page.screenshot({ path: shot, fullPage: true });
  const canvasShot = shot.replace(/\.png$/, '-canvas.png');
  await canvas.screenshot({ path: canvasShot });
  const box = await canvas.boundingBox();
  console.log(JSON.stringify({ canvas: canvasShot, width: box.width, height: box.height, errors }));
  await browser.close();
})().catch((e) => { console.error(String(e)); process.exit(1); });
