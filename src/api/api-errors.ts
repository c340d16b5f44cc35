import { BadRequestException, HttpException, HttpStatus } from '@nestjs/common';
import type { ValidationError } from 'class-validator';

/** The body of every Server API error: what went wrong and, for a 400, the fields at fault. */
export interface ApiErrorBody {
  error: string;
  fields?: string[];
}

/** 400 with `{"error": "...", "fields": [...]}`. */
export function badRequest(error: string, fields: string[] = []): BadRequestException {
  return new BadRequestException({ error, fields } satisfies ApiErrorBody);
}

/** 415: a body that is not JSON. */
export function unsupportedMediaType(error: string): HttpException {
  return new HttpException({ error } satisfies ApiErrorBody, HttpStatus.UNSUPPORTED_MEDIA_TYPE);
}

/** Every failed constraint as `field` (dotted path for nested ones) and its message. */
function flatten(errors: readonly ValidationError[], prefix = ''): { field: string; messages: string[] }[] {
  const out: { field: string; messages: string[] }[] = [];
  for (const e of errors) {
    const field = prefix + e.property;
    if (e.constraints) out.push({ field, messages: Object.values(e.constraints) });
    if (e.children?.length) out.push(...flatten(e.children, `${field}.`));
  }
  return out;
}

/**
 * The ValidationPipe's exceptionFactory: 400 `{"error": "<each failure>", "fields": [<each bad field>]}`
 * (an undeclared field is named too: `property x should not exist`).
 */
export function validationFailed(errors: ValidationError[]): BadRequestException {
  const failures = flatten(errors);
  const fields = [...new Set(failures.map((f) => f.field))];
  const error = failures.map((f) => f.messages.join(', ')).join('; ') || 'invalid body';
  return badRequest(error, fields);
}
