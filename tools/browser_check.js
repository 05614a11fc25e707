// Browser test of the web demo: node tools/browser_check.js URL SCREENSHOT.png NO_FACE.png NOT_AN_IMAGE.jpg
// In headless Debian chromium: runs the first example and waits for the 3D viewer (screenshots of the page and of
// the canvas); then reconstructs a photo without a face (the previous results must go, one error badge at most);
// then uploads a file that is not an image (a message must come at upload time). Prints a JSON summary; the
// screenshots are SCREENSHOT, SCREENSHOT-canvas, SCREENSHOT-no-face and SCREENSHOT-not-an-image (.png).
const { chromium } = require('playwright-core');

(async () => {
  const [url, shot, noFace, notAnImage] = process.argv.slice(2);
  const named = (suffix) => shot.replace(/\.png$/, `-${suffix}.png`);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--use-gl=swiftshader', '--enable-unsafe-swiftshader', '--disable-quic',
      '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const page = await browser.newPage({ viewport: { width: 1400, height: 1100 } });
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(url, { waitUntil: 'load', timeout: 60000 });
  const run = page.getByRole('button', { name: 'Reconstruct' });
  await run.waitFor({ timeout: 60000 });
  await page.locator('.gallery-item, button.gallery-item, [data-testid="examples"] button').first().click();
  await run.click();
  const canvas = page.locator('canvas').first();
  await canvas.waitFor({ state: 'visible', timeout: 90000 });
  await page.waitForTimeout(4000); // let the viewer load the GLB and draw
  await page.screenshot({ path: shot, fullPage: true });
  await canvas.screenshot({ path: named('canvas') });
  const box = await canvas.boundingBox();
  const downloads = () => page.locator('a[href*="face_obj.zip"]').count(); // names show split into stem and suffix
  const filesBefore = await downloads();

  // a photo without a face: the error comes, and nothing of the previous photo stays beside it
  const photoInput = page.locator('input[type=file]').first();
  await photoInput.setInputFiles(noFace);
  await page.waitForTimeout(1500);
  await run.click();
  await page.getByText('No face was found').first().waitFor({ timeout: 60000 });
  await page.waitForTimeout(1000);
  await page.screenshot({ path: named('no-face'), fullPage: true });
  const afterError = {
    files: await downloads(),
    timings: await page.getByText('Timings:').count(),
    errorBadges: await page.locator('.block').getByText('Error', { exact: true }).count(), // the toast is no block
  };

  // a file that is not an image: said at upload time, before Reconstruct
  await page.locator('button[aria-label="Clear"], button[title="Clear"]').first().click().catch(() => {});
  await page.waitForTimeout(500);
  await page.locator('input[type=file]').first().setInputFiles(notAnImage);
  let uploadMessage = true;
  await page.getByText('could not be read as an image').first().waitFor({ timeout: 30000 })
    .catch(() => { uploadMessage = false; });
  await page.waitForTimeout(500);
  await page.screenshot({ path: named('not-an-image'), fullPage: true });
  console.log(JSON.stringify({ canvas: named('canvas'), width: box.width, height: box.height, filesBefore, afterError,
    uploadMessage, errors }));
  await browser.close();
})().catch((e) => { console.error(String(e)); process.exit(1); });
