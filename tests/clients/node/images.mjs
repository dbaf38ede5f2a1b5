// Images: a generation as b64_json, a streamed generation with partial images, and an inpainting edit whose image
// and mask are files the test wrote (GENFOUNDRY_IMAGE, GENFOUNDRY_MASK), uploaded with the SDK's toFile.
import fs from "node:fs";
import { toFile } from "openai";
import { client, report } from "./client.mjs";

const generated = await client.images.generate({
  model: "tiny-sd15",
  prompt: "a lighthouse",
  size: "64x64",
  response_format: "b64_json",
  steps: 2,
  seed: 1,
});

const stream = await client.images.generate({
  model: "tiny-sd15",
  prompt: "a lighthouse",
  size: "64x64",
  stream: true,
  partial_images: 2,
  output_format: "webp",
  steps: 4,
  seed: 3,
});
const events = [];
for await (const event of stream) {
  events.push({ type: event.type, partial_image_index: event.partial_image_index, b64_json: event.b64_json });
}

const edited = await client.images.edit({
  model: "tiny-sd15",
  image: await toFile(fs.createReadStream(process.env.GENFOUNDRY_IMAGE), "in.png", { type: "image/png" }),
  mask: await toFile(fs.createReadStream(process.env.GENFOUNDRY_MASK), "mask.png", { type: "image/png" }),
  prompt: "a green apple",
  size: "64x64",
  response_format: "b64_json",
  output_format: "png",
  steps: 4,
  seed: 1,
});

report({
  generated: { b64_json: generated.data[0].b64_json, created: generated.created },
  stream: events,
  edited: { b64_json: edited.data[0].b64_json, output_format: edited.output_format },
});
