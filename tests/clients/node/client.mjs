// The client every script uses: the installed openai SDK, pointed at the server the test started (by env), with
// the JSON bodies it sent recorded (what the SDK asks for on its own), and a way to print one JSON answer for the
// test to read.
import OpenAI from "openai";
import { VERSION } from "openai/version";

export const sent = [];

async function recordingFetch(url, init) {
  if (typeof init?.body === "string") sent.push({ path: new URL(url).pathname, body: JSON.parse(init.body) });
  return fetch(url, init);
}

export const client = new OpenAI({
  baseURL: process.env.GENFOUNDRY_BASE_URL,
  apiKey: process.env.GENFOUNDRY_API_KEY,
  maxRetries: 0,
  timeout: 120_000,
  fetch: recordingFetch,
});

export function report(result) {
  process.stdout.write(JSON.stringify({ sdk_version: VERSION, ...result }));
}

// What a test needs to know of an error the SDK raised: its class and OpenAI's fields.
export async function caught(call) {
  try {
    await call();
  } catch (error) {
    return {
      class: error.constructor.name,
      is_api_error: error instanceof OpenAI.APIError,
      status: error.status,
      type: error.type,
      code: error.code,
      param: error.param,
      message: error.message,
    };
  }
  return null;
}
