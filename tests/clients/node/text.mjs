// Models, chat (whole, streamed, model "auto"), embeddings as the SDK asks for them by default (base64, decoded
// by the SDK) and as floats, fine-tuning jobs, and the errors of an unknown model.
import { client, report, caught, sent } from "./client.mjs";

const messages = [{ role: "user", content: "A sequence diagram of a login" }];
const inputs = ["a red fox", "a blue whale"];

const models = [];
for await (const model of client.models.list()) models.push({ id: model.id, capabilities: model.capabilities });

const chat = await client.chat.completions.create({ model: "tiny-llm", messages, max_tokens: 8, temperature: 0 });

const stream = await client.chat.completions.create({ model: "tiny-llm", messages, max_tokens: 8, stream: true });
let streamed = "";
const finishReasons = [];
for await (const chunk of stream) {
  for (const choice of chunk.choices) {
    streamed += choice.delta.content ?? "";
    finishReasons.push(choice.finish_reason);
  }
}

const auto = await client.chat.completions.create({
  model: "auto",
  messages: [{ role: "user", content: "what is the capital of france?" }],
  max_tokens: 8,
});

const byDefault = await client.embeddings.create({ model: "all-MiniLM-L6-v2", input: inputs });
const askedByDefault = sent.at(-1).body.encoding_format;
const floats = await client.embeddings.create({ model: "all-MiniLM-L6-v2", input: inputs, encoding_format: "float" });

const jobs = await client.fineTuning.jobs.list({ limit: 5 });

report({
  models,
  chat: {
    content: chat.choices[0].message.content,
    finish_reason: chat.choices[0].finish_reason,
    completion_tokens: chat.usage.completion_tokens,
  },
  stream: { content: streamed, finish_reasons: finishReasons },
  auto: { model: auto.model, content: auto.choices[0].message.content },
  embeddings: {
    asked_by_default: askedByDefault,
    default: byDefault.data.map((item) => item.embedding),
    float: floats.data.map((item) => item.embedding),
    prompt_tokens: floats.usage.prompt_tokens,
  },
  jobs: { data: jobs.data, has_more: jobs.has_more },
  errors: {
    chat_unknown_model: await caught(() =>
      client.chat.completions.create({ model: "no-such-model", messages, max_tokens: 4 }),
    ),
    retrieve_unknown_model: await caught(() => client.models.retrieve("no-such-model")),
  },
});
