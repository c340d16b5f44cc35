import type { IncomingMessage } from 'node:http';
import { applyDecorators, createParamDecorator, UseFilters, UseGuards, UseInterceptors, UsePipes, ValidationPipe, type ExecutionContext } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiBearerAuth,
  ApiPayloadTooLargeResponse,
  ApiTooManyRequestsResponse,
  ApiUnauthorizedResponse,
  ApiUnsupportedMediaTypeResponse,
} from '@nestjs/swagger';
import { rawClientDataOf, ApiBodyInterceptor } from './api-body.interceptor';
import { validationFailed } from './api-errors';
import { ApiExceptionFilter } from './api-exception.filter';
import { ApiKeyGuard } from './api-key.guard';
import { ApiListenerGuard } from './api-listener.guard';
import { ApiErrorDto } from './dto/users.dto';

/** The name of the API key's security scheme in the OpenAPI document. */
export const API_KEY_SCHEME = 'apiKey';

/**
 * The DTOs of the Server API, as Nest documents ValidationPipe: undeclared fields are refused
 * (named in `fields`), every failure is answered 400 `{"error": "...", "fields": [...]}`.
 */
export const apiValidationPipe = new ValidationPipe({
  whitelist: true,
  forbidNonWhitelisted: true,
  forbidUnknownValues: true,
  transform: true,
  validationError: { target: false, value: false },
  exceptionFactory: validationFailed,
});

/**
 * A controller of the Server API: only on the API's listener, only with a key (401 first, before
 * the body is even parsed; 429 for an address past its wrong keys), bodies parsed and validated, errors as `{"error": ...}` JSON.
 */
export function ServerApiController(): ClassDecorator {
  return applyDecorators(
    UseGuards(ApiListenerGuard, ApiKeyGuard),
    UseInterceptors(ApiBodyInterceptor),
    UsePipes(apiValidationPipe),
    UseFilters(ApiExceptionFilter),
    ApiBearerAuth(API_KEY_SCHEME),
    ApiUnauthorizedResponse({ description: 'Missing or unknown API key (checked before the body is read as JSON)', type: ApiErrorDto }),
    ApiTooManyRequestsResponse({
      description: 'This address presented more wrong keys than API_KEY_FAILURES_PER_MINUTE allows: every request is refused until `Retry-After` seconds have passed',
      type: ApiErrorDto,
    }),
  );
}

/** The answers of a call that takes a JSON body, in the OpenAPI document. */
export function TakesJsonBody(): MethodDecorator {
  return applyDecorators(
    ApiBadRequestResponse({ description: 'Malformed body (not JSON, not an object, too deep, a bad field): `fields` names the bad fields', type: ApiErrorDto }),
    ApiPayloadTooLargeResponse({ description: 'A body larger than MAX_MESSAGE_FRAME_BYTES + DIALOG_MAX_BYTES', type: ApiErrorDto }),
    ApiUnsupportedMediaTypeResponse({ description: 'A body that is not application/json in UTF-8', type: ApiErrorDto }),
  );
}

/**
 * The JSON text of the body's top-level `clientData` as the caller wrote it (see
 * ApiBodyInterceptor); re-serialized from the parsed body only when the raw text could not be
 * located (a key written with escapes), which may change numbers beyond a double.
 */
export const ClientDataJson = createParamDecorator((_: unknown, context: ExecutionContext): string => {
  const req = context.switchToHttp().getRequest<IncomingMessage & { body?: { clientData?: unknown } }>();
  return rawClientDataOf(req) ?? JSON.stringify(req.body?.clientData ?? null);
});
