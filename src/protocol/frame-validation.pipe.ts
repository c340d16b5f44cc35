import { Injectable, ValidationPipe, type ArgumentMetadata, type ValidationError } from '@nestjs/common';
import {
  getMetadataStorage,
  validateSync,
  ValidationTypes,
  type ValidationArguments,
  type ValidatorConstraintInterface,
  type ValidatorOptions,
} from 'class-validator';
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

/** One decorator of a property, ready to run: a sync constraint and what it is called with. */
interface Check {
  readonly kind: 'condition' | 'defined' | 'constraint' | 'nested';
  readonly constraints: unknown[];
  readonly validateIf?: (object: object, value: unknown) => boolean;
  readonly constraint?: ValidatorConstraintInterface;
  readonly condition?: (object: object, value: unknown) => boolean;
  /** The ValidationArguments of its calls: one object per check, refilled before each (sync) call. */
  readonly args?: ValidationArguments;
}

/**
 * What a DTO class declares: its validated properties, those holding a nested DTO, and, when every
 * decorator is one this pipe can run itself (sync constraints without `each`, groups or `always`),
 * the checks of each property in class-validator's order: conditions, IsDefined, constraints,
 * nested DTOs.
 */
interface Shape {
  readonly properties: readonly string[];
  readonly nested: ReadonlyMap<string, new () => object>;
  readonly checks?: readonly PropertyChecks[];
}

/** The checks of one property, in class-validator's order. */
interface PropertyChecks {
  readonly property: string;
  readonly list: readonly Check[];
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
  shape = { properties, nested, checks: compile(metadatas) };
  shapes.set(metatype, shape);
  return shape;
}

const ORDER: Record<Check['kind'], number> = { condition: 0, defined: 1, constraint: 2, nested: 3 };

/** The checks per property, or undefined when some decorator needs class-validator itself. */
function compile(metadatas: ReturnType<ReturnType<typeof getMetadataStorage>['getTargetValidationMetadatas']>): PropertyChecks[] | undefined {
  const checks = new Map<string, Check[]>();
  for (const m of metadatas) {
    if (m.each || m.always || (m.groups && m.groups.length > 0)) return undefined;
    let check: Check;
    switch (m.type) {
      case ValidationTypes.WHITELIST:
        continue;
      case ValidationTypes.CONDITIONAL_VALIDATION:
        check = { kind: 'condition', constraints: m.constraints, condition: m.constraints[0] as (object: object, value: unknown) => boolean };
        break;
      case ValidationTypes.IS_DEFINED:
        check = { kind: 'defined', constraints: m.constraints, validateIf: m.validateIf };
        break;
      case ValidationTypes.NESTED_VALIDATION:
        check = { kind: 'nested', constraints: m.constraints, validateIf: m.validateIf };
        break;
      case ValidationTypes.CUSTOM_VALIDATION: {
        const [constraint, ...others] = getMetadataStorage().getTargetValidatorConstraints(m.constraintCls);
        if (!constraint || others.length > 0 || constraint.async) return undefined;
        const args: ValidationArguments = { targetName: '', property: m.propertyName, object: {}, value: undefined, constraints: m.constraints };
        check = { kind: 'constraint', constraints: m.constraints, validateIf: m.validateIf, constraint: constraint.instance, args };
        break;
      }
      default:
        return undefined;
    }
    const list = checks.get(m.propertyName) ?? [];
    list.push(check);
    checks.set(m.propertyName, list);
  }
  return [...checks].map(([property, list]) => ({ property, list: list.sort((a, b) => ORDER[a.kind] - ORDER[b.kind]) }));
}

/**
 * Runs the compiled checks on the frame (its declared properties only); true when all pass. Only
 * the yes/no: the messages of a failure come from class-validator itself (validateSync on the
 * projection), so they are its own.
 */
function passes(metatype: new () => object, instance: Record<string, unknown>): boolean | undefined {
  const { checks, nested } = shapeOf(metatype);
  if (!checks) return undefined;
  for (let p = 0; p < checks.length; p++) {
    const { property, list } = checks[p];
    const value = instance[property];
    for (let c = 0; c < list.length; c++) {
      const check = list[c];
      if (check.kind === 'condition') {
        if (!check.condition!(instance, value)) break; // the property is not validated
        continue;
      }
      if (check.validateIf && !check.validateIf(instance, value)) continue;
      if (check.kind === 'defined') {
        if (value === undefined || value === null) return false;
      } else if (check.kind === 'constraint') {
        const args = check.args!;
        args.targetName = metatype.name;
        args.object = instance;
        args.value = value;
        const ok = check.constraint!.validate(value, args);
        if (ok !== true) return ok === false ? false : undefined; // a promise: let class-validator handle it
      } else {
        const type = nested.get(property);
        if (!type || typeof value !== 'object' || value === null || Array.isArray(value)) return false;
        const inner = passes(type, value as Record<string, unknown>);
        if (inner !== true) return inner;
      }
    }
  }
  return true;
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

/** The metatypes ValidationPipe never validates (its toValidate), as a set. */
const NOT_VALIDATED = new Set<unknown>([String, Boolean, Number, Array, Object, Buffer, Date, undefined, null]);

const FRAME_VALIDATION: ValidatorOptions = { whitelist: false, forbidUnknownValues: false, stopAtFirstError: true };

/**
 * Nest's ValidationPipe for the protocol's frames (docs/protocol.md, "Invalid frames"): the DTO's
 * class-validator decorators decide, a frame that does not fit its DTO is an INVALID_MESSAGE whose
 * message names the first field at fault, fields the gateway does not know are ignored, and the
 * handler gets the frame as received (a clientData is forwarded as written).
 *
 * What it does differently from ValidationPipe is how, not what, it checks:
 * - instead of class-transformer's plainToInstance, which copies every field of the frame (a frame
 *   of 5000 unknown keys took ~100 ms to copy twice, on the event loop, per frame), the instance
 *   holds just the properties the DTO declares (nested DTOs through their declared type);
 * - the DTO's class-validator decorators are read once per class and their sync constraints called
 *   directly, in class-validator's order (a valid frame costs about a microsecond, against ~9 us
 *   through validateSync); any failure is then worded by class-validator's validateSync itself,
 *   and a DTO using what this does not run (each, groups, always, async constraints) is validated
 *   by validateSync every time;
 * - it answers synchronously.
 */
@Injectable()
export class FrameValidationPipe extends ValidationPipe {
  constructor() {
    super({ ...FRAME_VALIDATION, transform: false, exceptionFactory: (errors) => invalidMessage(firstProblem(errors) ?? 'the frame does not fit its message type') });
  }

  /** Synchronous (a value, not a promise): the gateway's pipeline does not wait for what answers at once. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- ValidationPipe declares Promise<any>; a plain value is what Nest's pipes may return too
  override transform(value: unknown, metadata: ArgumentMetadata): any {
    // ValidationPipe's toValidate, without its per-call array: custom decorators and primitives are not validated.
    const metatype = metadata.metatype as (new () => object) | undefined;
    if (!metatype || metadata.type === 'custom' || NOT_VALIDATED.has(metatype)) return value;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalidMessage('a frame must be a JSON object');
    if (passes(metatype, value as Record<string, unknown>) === true) return value;
    // A failure (or a decorator only class-validator can run): class-validator decides and words it.
    const errors = validateSync(project(metatype, value as Record<string, unknown>), FRAME_VALIDATION);
    if (errors.length > 0) throw this.exceptionFactory(errors);
    return value;
  }
}
