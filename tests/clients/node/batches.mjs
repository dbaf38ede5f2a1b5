// A chat batch: the input JSONL uploaded with files.create, then batches.create, retrieve until it has ended
// (GENFOUNDRY_BATCH_LINES is that JSONL), list, and the output file's content.
import { toFile } from "openai";
import { client, report } from "./client.mjs";

const ended = ["completed", "failed", "expired", "cancelled"];
const file = await client.files.create({
  file: await toFile(Buffer.from(process.env.GENFOUNDRY_BATCH_LINES), "requests.jsonl"),
  purpose: "batch",
});
const created = await client.batches.create({
  input_file_id: file.id,
  endpoint: "/v1/chat/completions",
  completion_window: "24h",
});
let batch = created;
while (!ended.includes(batch.status)) {
  await new Promise((resolve) => setTimeout(resolve, 100));
  batch = await client.batches.retrieve(created.id);
}
const listed = [];
for await (const item of client.batches.list({ limit: 10 })) listed.push(item.id);
const output = batch.output_file_id ? await (await client.files.content(batch.output_file_id)).text() : null;

report({
  file: { id: file.id, purpose: file.purpose },
  created: { id: created.id, status: created.status },
  batch: { id: batch.id, status: batch.status, request_counts: batch.request_counts },
  listed,
  output,
});
