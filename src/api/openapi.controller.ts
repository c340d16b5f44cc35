import { Controller, Get, Header, Injectable, UseFilters, UseGuards } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags, type OpenAPIObject } from '@nestjs/swagger';
import { ApiExceptionFilter } from './api-exception.filter';
import { ApiListenerGuard } from './api-listener.guard';

/**
 * The Server API's OpenAPI document, built once on first use by the factory setupServerApi()
 * installs (SwaggerModule.createDocument needs the application, which providers do not see).
 */
@Injectable()
export class OpenApiDocument {
  private factory: (() => OpenAPIObject) | undefined;
  private document: OpenAPIObject | undefined;

  setFactory(factory: () => OpenAPIObject): void {
    this.factory = factory;
    this.document = undefined;
  }

  get(): OpenAPIObject {
    if (!this.factory) throw new Error('the OpenAPI document factory is not installed (setupServerApi)');
    return (this.document ??= this.factory());
  }
}

/** GET /api/v1/openapi.json: the document, without a key (it holds no secret). */
@ApiTags('meta')
@Controller('api/v1')
@UseGuards(ApiListenerGuard)
@UseFilters(ApiExceptionFilter)
export class OpenApiController {
  constructor(private readonly document: OpenApiDocument) {}

  @Get('openapi.json')
  @Header('Cache-Control', 'no-cache')
  @ApiOperation({ summary: 'The OpenAPI 3 document of this API (no key needed)' })
  @ApiOkResponse({ description: 'This document', schema: { type: 'object' } })
  openapi(): OpenAPIObject {
    return this.document.get();
  }
}
