/**
 * The machine-readable contract (docs/asyncapi.yaml) as a test helper: `assertValidServerFrame`
 * checks a frame the gateway sent against the JSON Schema of its message, `assertValidClientFrame`
 * one a client sends. Synchronous and fast: the document is read and every schema compiled once,
 * on first use; a check is then a lookup by `type` and one or two compiled validators.
 *
 * Which messages are "server" and which "client" comes from the document itself: the messages of
 * its `send` operations (the gateway sends) and of its `receive` operations (the gateway receives).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import { parse } from 'yaml';

export const ASYNCAPI_PATH = join(__dirname, '..', '..', 'docs', 'asyncapi.yaml');

type Json = Record<string, unknown>;

export interface ContractMessage {
  /** Component name, e.g. `AuthSuccess`. */
  id: string;
  /** The frame's `type` (the payload's `properties.type.const`). */
  type: string;
  /** The payload schema with every $ref inlined. */
  schema: Json;
  examples: unknown[];
  validate: ValidateFunction;
}

export interface Contract {
  /** The parsed YAML, as is. */
  document: Json;
  /** Gateway -> client messages, by frame type (several variants per type, e.g. SUCCESS and ERROR). */
  server: Map<string, ContractMessage[]>;
  /** Client -> gateway messages, by frame type. */
  client: Map<string, ContractMessage[]>;
}

let loaded: Contract | undefined;

/** The contract, loaded and compiled once. */
export function contract(): Contract {
  loaded ??= loadContract(readFileSync(ASYNCAPI_PATH, 'utf8'));
  return loaded;
}

/** Throws an Error saying why, when `frame` is not a valid gateway -> client frame. */
export function assertValidServerFrame(frame: unknown): void {
  const problem = check(contract().server, frame, 'server');
  if (problem) throw new Error(problem);
}

/** Throws an Error saying why, when `frame` is not a valid client -> gateway frame. */
export function assertValidClientFrame(frame: unknown): void {
  const problem = check(contract().client, frame, 'client');
  if (problem) throw new Error(problem);
}

/** The id of the contract message a valid gateway -> client frame is (e.g. `AuthSuccess`); throws when it is none. */
export function identifyServerFrame(frame: unknown): string {
  assertValidServerFrame(frame);
  const variants = contract().server.get((frame as { type: string }).type) ?? [];
  return variants.find((v) => v.validate(frame))!.id;
}

/** Why `frame` is not a valid gateway -> client frame, or undefined when it is. */
export function serverFrameProblem(frame: unknown): string | undefined {
  return check(contract().server, frame, 'server');
}

function check(messages: Map<string, ContractMessage[]>, frame: unknown, side: string): string | undefined {
  const shown = show(frame);
  if (typeof frame !== 'object' || frame === null || Array.isArray(frame)) return `${side} frame is not a JSON object: ${shown}`;
  const type = (frame as { type?: unknown }).type;
  if (typeof type !== 'string') return `${side} frame has no string "type": ${shown}`;
  const variants = messages.get(type);
  if (!variants) return `${side} frame of a type docs/asyncapi.yaml does not describe (${type}): ${shown}`;
  const failures: { id: string; errors: ErrorObject[] }[] = [];
  for (const variant of variants) {
    if (variant.validate(frame)) return undefined;
    failures.push({ id: variant.id, errors: [...(variant.validate.errors ?? [])] });
  }
  // Report the variants the frame claims to be (its `status` / `connectionStatus` constants match),
  // not every variant of its type.
  const claimed = failures.filter((f) => !f.errors.some((e) => e.keyword === 'const'));
  const report = (claimed.length > 0 ? claimed : failures).map((f) => `${f.id}: ${describe(f.errors)}`);
  return `${side} frame ${type} does not match docs/asyncapi.yaml (${report.join(' | ')}): ${shown}`;
}

function describe(errors: ErrorObject[] | null | undefined): string {
  return (errors ?? [])
    .map((e) => {
      const where = e.instancePath || '/';
      if (e.keyword === 'additionalProperties') return `${where} has an undocumented field "${String(e.params.additionalProperty)}"`;
      if (e.keyword === 'const') return `${where} must be ${JSON.stringify(e.params.allowedValue)}`;
      if (e.keyword === 'enum') return `${where} must be one of ${JSON.stringify(e.params.allowedValues)}`;
      return `${where} ${e.message ?? e.keyword}`;
    })
    .join('; ');
}

function show(frame: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(frame) ?? String(frame);
  } catch {
    text = String(frame);
  }
  return text.length > 600 ? `${text.slice(0, 600)}...` : text;
}

/** Parses and compiles a contract from the YAML text (exported for the contract's own tests). */
export function loadContract(yamlText: string): Contract {
  const document = parse(yamlText) as Json;
  const ajv = new Ajv({ allErrors: true, strict: true });
  const server = new Map<string, ContractMessage[]>();
  const client = new Map<string, ContractMessage[]>();
  const seen = new Map<string, ContractMessage>();
  const operations = (document.operations ?? {}) as Record<string, Json>;
  for (const [name, operation] of Object.entries(operations)) {
    const target = operation.action === 'send' ? server : operation.action === 'receive' ? client : undefined;
    if (!target) throw new Error(`operation ${name}: action must be send or receive`);
    for (const ref of (operation.messages ?? []) as Json[]) {
      const { value, id } = follow(document, ref);
      let message = seen.get(id);
      if (!message) {
        const schema = inline(document, (value as Json).payload, `message ${id}`) as Json;
        const type = ((schema.properties as Json | undefined)?.type as Json | undefined)?.const;
        if (typeof type !== 'string') throw new Error(`message ${id}: its payload has no properties.type.const`);
        const examples = ((value as Json).examples ?? []) as Json[];
        message = { id, type, schema, examples: examples.map((e) => e.payload), validate: ajv.compile(schema) };
        seen.set(id, message);
      }
      const list = target.get(message.type) ?? [];
      if (!list.includes(message)) list.push(message);
      target.set(message.type, list);
    }
  }
  return { document, server, client };
}

/** Follows a chain of local $refs; returns the value and the last path segment (the component's name). */
function follow(document: Json, node: unknown): { value: unknown; id: string } {
  let value = node;
  let id = '';
  for (let hops = 0; isRef(value); hops++) {
    if (hops > 20) throw new Error(`$ref loop at ${value.$ref}`);
    id = value.$ref.split('/').pop() ?? '';
    value = pointer(document, value.$ref);
  }
  return { value, id };
}

/** A copy of a schema with every local $ref replaced by its target (the contract has no recursive schemas). */
function inline(document: Json, node: unknown, where: string, depth = 0): unknown {
  if (depth > 50) throw new Error(`${where}: schema nested too deep (a recursive $ref?)`);
  if (isRef(node)) return inline(document, pointer(document, node.$ref), where, depth + 1);
  if (Array.isArray(node)) return node.map((item) => inline(document, item, where, depth + 1));
  if (typeof node === 'object' && node !== null) {
    const out: Json = {};
    for (const [key, value] of Object.entries(node)) {
      // `examples` holds instances, not schemas: copied as they are.
      out[key] = key === 'examples' ? value : inline(document, value, where, depth + 1);
    }
    return out;
  }
  return node;
}

function isRef(node: unknown): node is { $ref: string } {
  return typeof node === 'object' && node !== null && typeof (node as { $ref?: unknown }).$ref === 'string';
}

function pointer(document: Json, ref: string): unknown {
  if (!ref.startsWith('#/')) throw new Error(`only local $refs are supported: ${ref}`);
  let value: unknown = document;
  for (const raw of ref.slice(2).split('/')) {
    const key = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
    if (typeof value !== 'object' || value === null || !(key in value)) throw new Error(`unresolved $ref ${ref}`);
    value = (value as Json)[key];
  }
  return value;
}
