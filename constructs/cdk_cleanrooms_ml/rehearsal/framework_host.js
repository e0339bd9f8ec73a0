'use strict';
// One warm "Lambda" execution environment for a Node.js function of a synthesized asset: the CDK
// Provider framework's framework.js, run as it is, with ./outbound (its only way out: Lambda invoke,
// Step Functions StartExecution, the HTTPS response to CloudFormation) replaced, as aws-cdk's own tests
// replace it, by calls forwarded to the Python rehearsal.
//
//   node framework_host.js <asset dir> <handler, e.g. framework.onEvent> <protocol fd>
//
// Protocol: JSON lines. Python writes requests on stdin; this process writes on <protocol fd>, so that
// nothing the function prints can be mistaken for a message.
//   in:  {"type":"invoke","id":N,"requestId":"...","deadline":<epoch ms>,"event":{...}}
//        {"type":"reply","id":M,"result":<any>} | {"type":"reply","id":M,"error":{"name":"...","message":"..."}}
//   out: {"type":"ready"}
//        {"type":"call","id":M,"invocation":N,"name":"invokeFunction","args":[...]}
//        {"type":"done","id":N,"result":<any>,"logs":[...]} | {"type":"done","id":N,"error":{...},"logs":[...]}
// Invocations run concurrently (the ids tie calls and answers together); each one's console output is
// captured apart (AsyncLocalStorage), formatted and filtered as Lambda's Node.js runtime does.

const fs = require('fs');
const Module = require('module');
const path = require('path');
const readline = require('readline');
const util = require('util');
const { AsyncLocalStorage } = require('async_hooks');

const [assetDir, handlerName, protocolFd] = [path.resolve(process.argv[2]), process.argv[3], Number(process.argv[4])];
const invocationContext = new AsyncLocalStorage();
const pendingCalls = new Map();
let nextCallId = 0;

function send(message) {
  const data = Buffer.from(JSON.stringify(message) + '\n');
  let offset = 0;
  while (offset < data.length) {
    offset += fs.writeSync(protocolFd, data, offset);
  }
}

// Lambda's code root is /var/task: stack traces (which become the Reason sent to CloudFormation) say so.
Error.prepareStackTrace = (error, frames) => {
  const header = Error.prototype.toString.call(error);
  const lines = frames.map((frame) => `    at ${String(frame).split(assetDir + path.sep).join('/var/task/')}`);
  return [header, ...lines].join('\n');
};

// ---------------------------------------------------------------------------------------------------
// Logging as the Node.js runtime does it: Text ("<time>\t<request id>\t<LEVEL>\t<message>") or, with
// LogFormat JSON, one JSON object per line, dropped below the function's ApplicationLogLevel.

const LEVELS = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'FATAL'];
const jsonFormat = (process.env.AWS_LAMBDA_LOG_FORMAT || '').toUpperCase() === 'JSON';
const minimumLevel = jsonFormat ? Math.max(0, LEVELS.indexOf((process.env.AWS_LAMBDA_LOG_LEVEL || 'INFO').toUpperCase())) : 0;

function record(level, message) {
  const invocation = invocationContext.getStore();
  if (!invocation || LEVELS.indexOf(level) < minimumLevel) {
    return;
  }
  const timestamp = new Date().toISOString();
  invocation.logs.push(
    jsonFormat
      ? JSON.stringify({ timestamp, level, requestId: invocation.requestId, message })
      : `${timestamp}\t${invocation.requestId}\t${level}\t${message}`,
  );
}

for (const [method, level] of [['trace', 'TRACE'], ['debug', 'DEBUG'], ['info', 'INFO'], ['log', 'INFO'], ['warn', 'WARN'], ['error', 'ERROR']]) {
  const original = console[method].bind(console);
  console[method] = (...args) => (invocationContext.getStore() ? record(level, util.format(...args)) : original(...args));
}

// ---------------------------------------------------------------------------------------------------
// ./outbound, replaced before framework.js (or cfn-response.js) requires it: the real one loads
// @aws-sdk/* clients, which the asset does not carry (the Lambda runtime provides them).

// The SDK's shapes: Lambda's Payload is bytes, StartExecution's startDate a Date.
const decoders = {
  invokeFunction: (r) => ({ ...r, Payload: r.Payload == null ? undefined : new TextEncoder().encode(r.Payload) }),
  startExecution: (r) => ({ ...r, startDate: new Date(r.startDate) }),
};

function forward(name) {
  return (...args) =>
    new Promise((resolve, reject) => {
      const id = nextCallId++;
      pendingCalls.set(id, { name, resolve, reject });
      const invocation = invocationContext.getStore();
      send({ type: 'call', id, invocation: invocation ? invocation.id : null, name, args });
    });
}

const outbound = new Proxy(
  { __esModule: true },
  {
    get: (target, name) => (name in target || typeof name !== 'string' || name === 'then' ? target[name] : forward(name)),
  },
);

function answer(message) {
  const call = pendingCalls.get(message.id);
  if (!call) {
    return;
  }
  pendingCalls.delete(message.id);
  if (message.error) {
    // An AWS API error as the SDK throws it; its stack names the played call, not this host.
    const error = new Error(message.error.message);
    error.name = message.error.name;
    error.stack = `${error.name}: ${error.message}\n    at outbound.${call.name} (played by the rehearsal)`;
    call.reject(error);
  } else {
    const decode = decoders[call.name];
    call.resolve(decode && message.result ? decode(message.result) : (message.result ?? undefined));
  }
}

// ---------------------------------------------------------------------------------------------------
// The handler, loaded as the runtime loads it: "<module>.<export>" from the code root.

let handler;
let initError;
try {
  const outboundPath = path.join(assetDir, 'outbound.js');
  if (fs.existsSync(outboundPath)) {
    const replaced = new Module(outboundPath, null);
    replaced.filename = outboundPath;
    replaced.loaded = true;
    replaced.exports = outbound;
    require.cache[outboundPath] = replaced;
  }
  const dot = handlerName.lastIndexOf('.');
  const exported = require(path.join(assetDir, handlerName.slice(0, dot)))[handlerName.slice(dot + 1)];
  if (typeof exported !== 'function') {
    throw Object.assign(new Error(`${handlerName} is undefined or not exported`), { name: 'Runtime.HandlerNotFound' });
  }
  handler = exported;
} catch (error) {
  initError = error;
}

function errorPayload(error) {
  if (error instanceof Error) {
    return { errorType: error.name, errorMessage: error.message, trace: String(error.stack).split('\n') };
  }
  return { errorType: typeof error, errorMessage: String(error), trace: [] };
}

async function invoke(message) {
  const invocation = { id: message.id, requestId: message.requestId, logs: [] };
  await invocationContext.run(invocation, async () => {
    const context = {
      awsRequestId: message.requestId,
      functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
      getRemainingTimeInMillis: () => Math.max(0, message.deadline - Date.now()),
    };
    try {
      if (initError) {
        throw initError;
      }
      const result = await handler(message.event, context);
      send({ type: 'done', id: message.id, result: result === undefined ? null : result, logs: invocation.logs });
    } catch (error) {
      const payload = errorPayload(error);
      record('ERROR', `Invoke Error \t${JSON.stringify(payload)}`);
      send({ type: 'done', id: message.id, error: payload, logs: invocation.logs });
    }
  });
}

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const message = JSON.parse(line);
  if (message.type === 'invoke') {
    invoke(message);
  } else if (message.type === 'reply') {
    answer(message);
  }
}).on('close', () => process.exit(0));

send({ type: 'ready' });
