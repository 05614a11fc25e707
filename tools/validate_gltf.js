// Validate a GLB with the Khronos glTF validator: node tools/validate_gltf.js FILE -> JSON summary on stdout.
const fs = require('fs');
const validator = require('gltf-validator');
const data = new Uint8Array(fs.readFileSync(process.argv[2]));
validator.validateBytes(data).then((r) => { console.log(JSON.stringify({errors: r.issues.numErrors, warnings: r.issues.numWarnings, messages: r.issues.messages.slice(0, 5)})); }).catch((e) => { console.error(e); process.exit(2); });
