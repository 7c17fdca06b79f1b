// Runs the official `openai` npm client against the gateway: a completion, a streamed completion and a streamed
// chat completion, each compared with the same request not streamed. Prints one JSON line; exits 1 on a mismatch.
// Usage: node openai-compat.mjs BASE_URL API_KEY MODEL
import OpenAI from "openai";

const [baseURL, apiKey, model] = process.argv.slice(2);
const client = new OpenAI({ baseURL: `${baseURL}/v1`, apiKey, timeout: 60_000, maxRetries: 0 });
const sampling = { model, max_tokens: 24, temperature: 0.9, seed: 1234 };
const prompt = "The city at night was";
const messages = [
  { role: "system", content: "You are a helpful assistant." },
  { role: "user", content: "Tell me about the sea." },
];

const completion = await client.completions.create({ ...sampling, prompt });
let streamedCompletion = "";
for await (const chunk of await client.completions.create({ ...sampling, prompt, stream: true })) {
  streamedCompletion += chunk.choices.map((c) => c.text).join("");
}

const chat = await client.chat.completions.create({ ...sampling, messages });
let streamedChat = "";
let usage = null;
for await (const chunk of await client.chat.completions.create({ ...sampling, messages, stream: true, stream_options: { include_usage: true } })) {
  streamedChat += chunk.choices.map((c) => c.delta?.content ?? "").join("");
  if (chunk.usage) usage = chunk.usage;
}

const models = await client.models.list();
const result = {
  completion: completion.choices[0].text,
  streamedCompletion,
  chat: chat.choices[0].message.content,
  streamedChat,
  chatUsage: usage,
  models: models.data.map((m) => m.id),
};
console.log(JSON.stringify(result));
const same = result.completion === result.streamedCompletion && result.chat === result.streamedChat && result.completion.length > 0 && usage !== null;
process.exit(same ? 0 : 1);
