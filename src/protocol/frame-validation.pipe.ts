import { Injectable, ValidationPipe, type ArgumentMetadata, type ValidationError } from '@nestjs/common';
import { getMetadataStorage, validateSync, type ValidatorOptions } from 'class-validator';
import { ValidationTypes } from 'class-validator';
import { invalidMessage } from './errors';

/** "serverData.message must be a string": the first failed constraint, with the path of its property. */
function firstProblem(errors: ValidationError[], parent = ''): string | undefined {
  for (const error of errors) {
    const path = parent ? `${parent}.${error.property}` : error.property;
    const constraints = Object.values(error.constraints ?? {});
    if (constraints.length > 0) return constraints[0].startsWith(path) ? constraints[0] : constraints[0].replace(error.property, path);
    const nested = firstProblem(error.children ?? [], path);
    if (nested) return nested;
  }
  return undefined;
}

/** What a DTO class declares: its validated properties, and those holding a nested DTO. */
interface Shape {
  readonly properties: readonly string[];
  readonly nested: ReadonlyMap<string, new () => object>;
}

const shapes = new WeakMap<object, Shape>();

/** The properties class-validator knows on `metatype`, and the nested DTO classes of its @ValidateNested ones. */
function shapeOf(metatype: new () => object): Shape {
  let shape = shapes.get(metatype);
  if (shape) return shape;
  const metadatas = getMetadataStorage().getTargetValidationMetadatas(metatype, '', true, false);
  const properties = [...new Set(metadatas.map((m) => m.propertyName))];
  const nested = new Map<string, new () => object>();
  for (const m of metadatas) {
    if (m.type !== ValidationTypes.NESTED_VALIDATION) continue;
    const type: unknown = Reflect.getMetadata('design:type', metatype.prototype, m.propertyName);
    if (typeof type === 'function' && type !== Object && type !== Array) nested.set(m.propertyName, type as new () => object);
  }
  shape = { properties, nested };
  shapes.set(metatype, shape);
  return shape;
}

/**
 * An instance of `metatype` holding only what it declares: its validated properties, nested DTOs
 * projected the same way, everything else (an opaque clientData included) by reference, never
 * walked. Fields a DTO does not declare are never visited, so they cost nothing however many.
 */
function project(metatype: new () => object, value: Record<string, unknown>): object {
  const { properties, nested } = shapeOf(metatype);
  const instance = Object.create(metatype.prototype as object) as Record<string, unknown>;
  for (const property of properties) {
    const field = value[property];
    const type = nested.get(property);
    instance[property] = type && typeof field === 'object' && field !== null && !Array.isArray(field) ? project(type, field as Record<string, unknown>) : field;
  }
  return instance;
}

const FRAME_VALIDATION: ValidatorOptions = { whitelist: false, forbidUnknownValues: false, stopAtFirstError: true };

/**
 * Nest's ValidationPipe for the protocol's frames (docs/protocol.md, "Invalid frames"): the DTO's
 * class-validator decorators decide, a frame that does not fit its DTO is an INVALID_MESSAGE whose
 * message names the first field at fault, fields the gateway does not know are ignored, and the
 * handler gets the frame as received (a clientData is forwarded as written).
 *
 * What it does differently from ValidationPipe is only how the DTO instance is made: instead of
 * class-transformer's plainToInstance, which copies every field of the frame (a frame of 5000
 * unknown keys took ~100 ms to copy twice, on the event loop, per frame), the instance holds just
 * the properties the DTO declares (nested DTOs through their declared type), and class-validator
 * runs synchronously on it.
 */
@Injectable()
export class FrameValidationPipe extends ValidationPipe {
  constructor() {
    super({ ...FRAME_VALIDATION, transform: false, exceptionFactory: (errors) => invalidMessage(firstProblem(errors) ?? 'the frame does not fit its message type') });
  }

  override async transform(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    const metatype = metadata.metatype as (new () => object) | undefined;
    if (!metatype || !this.toValidate(metadata)) return value;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalidMessage('a frame must be a JSON object');
    const errors = validateSync(project(metatype, value as Record<string, unknown>), FRAME_VALIDATION);
    if (errors.length > 0) throw this.exceptionFactory(errors);
    return value;
  }
}
