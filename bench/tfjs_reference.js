// Reference execution of a TF.js graph model with the pure-JS cpu backend of @tensorflow/tfjs
// (bench/nanodet_parity.py drives it). usage: node tfjs_reference.js model.json input.f32 B H W out_prefix
const fs = require('fs');
const path = require('path');
const tf = require('@tensorflow/tfjs');
async function main() {
  const [modelJson, inputFile, B, H, W, outPrefix] = process.argv.slice(2);
  await tf.setBackend('cpu');
  const doc = JSON.parse(fs.readFileSync(modelJson, 'utf8'));
  const specs = [], bufs = [];
  for (const g of doc.weightsManifest) {
    for (const p of g.paths) bufs.push(fs.readFileSync(path.join(path.dirname(modelJson), p)));
    specs.push(...g.weights);
  }
  const all = Buffer.concat(bufs);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
  const model = await tf.loadGraphModel(tf.io.fromMemory({modelTopology: doc.modelTopology, weightSpecs: specs, weightData, format: doc.format, signature: doc.signature}));
  const raw = fs.readFileSync(inputFile);
  const data = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
  const n = +B, per = 3 * (+H) * (+W);
  const names = Object.keys(doc.signature.outputs);
  for (let b = 0; b < n; b++) {
    const x = tf.tensor(data.slice(b * per, (b + 1) * per), [1, 3, +H, +W]);
    const outs = model.execute(x, names);
    for (let k = 0; k < names.length; k++) {
      const arr = await outs[k].data();
      fs.writeFileSync(`${outPrefix}_${b}_${names[k].split(':')[0]}.f32`, Buffer.from(arr.buffer));
    }
  }
  console.log(JSON.stringify({outputs: names, shapes: model.outputs.map(o => o.shape)}));
}
main().catch(e => { console.error(e); process.exit(1); });
