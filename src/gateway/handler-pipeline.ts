import type { ArgumentMetadata, CanActivate, NestInterceptor, PipeTransform } from '@nestjs/common';
import { FORBIDDEN_MESSAGE } from '@nestjs/core/guards/constants';
import { ExecutionContextHost } from '@nestjs/core/helpers/execution-context-host';
import type { NestContainer } from '@nestjs/core';
import { GuardsConsumer, GuardsContextCreator } from '@nestjs/core/guards';
import { InterceptorsConsumer, InterceptorsContextCreator } from '@nestjs/core/interceptors';
import { PipesConsumer, PipesContextCreator } from '@nestjs/core/pipes';
import { ParamsTokenFactory } from '@nestjs/core/pipes/params-token-factory';
import { WsException } from '@nestjs/websockets';
import { ExceptionFiltersContext } from '@nestjs/websockets/context/exception-filters-context';
import { WsContextCreator } from '@nestjs/websockets/context/ws-context-creator';
import { WsProxy } from '@nestjs/websockets/context/ws-proxy';
import type { WsExceptionsHandler } from '@nestjs/websockets/exceptions/ws-exceptions-handler';
import { catchError, EMPTY, isObservable, type Observable } from 'rxjs';
import type { ChatClient } from '../messaging/chat-client';
import type { ProtocolExceptionFilter } from './protocol-exception.filter';

/**
 * A message handler with its whole Nest pipeline around it. It never throws: every error goes to
 * the handler's exception filters. The result is what the handler returned (a value, or an
 * Observable when interceptors wrap it); a Promise when some step of the pipeline was asynchronous.
 */
export type Pipeline = (client: ChatClient, data: unknown) => unknown;

type Callback = (...args: unknown[]) => unknown;

interface ParamOption {
  index: number;
  type: number | string;
  data?: unknown;
  metatype?: unknown;
  pipes: PipeTransform[];
  extractValue: (...args: unknown[]) => unknown;
  /** What its pipes are told about it (made once, not per frame). */
  argument: ArgumentMetadata;
}

/** WsContextCreator's own metadata lookup (which params, which pipes, which types). */
interface WsMetadataLookup {
  getMetadata(instance: object, methodName: string, contextType: string): {
    argsLength: number;
    paramtypes: unknown[] | undefined;
    getParamsMetadata: (moduleKey: string) => Omit<ParamOption, 'metatype'>[];
  };
}

const isThenable = (value: unknown): value is PromiseLike<unknown> =>
  typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function';

/**
 * Builds handlers the way Nest builds a gateway's (@nestjs/websockets' WsContextCreator, with the
 * very context creators SocketModule gives it: the handler's guards, interceptors, pipes and
 * exception filters, its own, its class's and the global ones, resolved through Nest's DI), and
 * runs them in Nest's order: guards, then interceptors, then pipes, then the handler, with the
 * exception filters around all of it and ProtocolExceptionFilter where Nest would fall back to
 * BaseWsExceptionFilter.
 *
 * The difference is only in how it waits: Nest's creator awaits every step, so each frame costs a
 * chain of promises (about ten, each of them tracked by the async hooks that the logger's
 * AsyncLocalStorage turns on). Here a step that answers synchronously (a guard that returns a
 * boolean, a pipe that returns a value, a handler that returns no promise) is not awaited, and
 * the pipeline continues asynchronously from the first step that does return a promise or an
 * Observable; interceptors always run through Nest's own InterceptorsConsumer. Measured on a
 * dialog round trip: see bench/README.md.
 */
export class HandlerPipelineFactory {
  private readonly metadata: WsMetadataLookup;
  private readonly filters: ExceptionFiltersContext;
  private readonly pipes: PipesContextCreator;
  private readonly guards: GuardsContextCreator;
  private readonly interceptors: InterceptorsContextCreator;
  private readonly guardsConsumer = new GuardsConsumer();
  private readonly pipesConsumer = new PipesConsumer();
  private readonly interceptorsConsumer = new InterceptorsConsumer();
  private readonly paramTokens = new ParamsTokenFactory();

  constructor(
    container: NestContainer,
    private readonly fallback: ProtocolExceptionFilter,
  ) {
    this.filters = new ExceptionFiltersContext(container);
    this.pipes = new PipesContextCreator(container);
    this.guards = new GuardsContextCreator(container);
    this.interceptors = new InterceptorsContextCreator(container);
    this.metadata = new WsContextCreator(
      new WsProxy(),
      this.filters,
      this.pipes,
      this.pipesConsumer,
      this.guards,
      this.guardsConsumer,
      this.interceptors,
      this.interceptorsConsumer,
    ) as unknown as WsMetadataLookup;
  }

  create(instance: object, methodName: string, moduleKey: string, pattern: string): Pipeline {
    const callback = (instance as Record<string, Callback>)[methodName];
    const { argsLength, paramtypes, getParamsMetadata } = this.metadata.getMetadata(instance, methodName, 'ws');
    const exceptions = this.filters.create(instance, callback, moduleKey) as unknown as WsExceptionsHandler;
    const pipes = this.pipes.create(instance, callback, moduleKey) as PipeTransform[];
    const guards = this.guards.create(instance, callback, moduleKey) as CanActivate[];
    const interceptors = this.interceptors.create(instance, callback, moduleKey) as NestInterceptor[];
    const params: ParamOption[] = getParamsMetadata(moduleKey).map((param) => {
      const metatype = paramtypes?.[param.index];
      const type = this.paramTokens.exchangeEnumForString(param.type as never);
      return {
        ...param,
        metatype,
        // The pipes of the method/class/global level, then the parameter's own.
        pipes: [...pipes, ...param.pipes],
        type,
        argument: Object.freeze({ metatype, type, data: param.data }) as ArgumentMetadata,
      };
    });

    const fail = (args: unknown[], error: unknown): void => {
      const host = new ExecutionContextHost(args);
      host.setType('ws');
      if (!exceptions.invokeCustomFilters(error, host)) this.fallback.catch(error, host);
    };

    /** Pipes (a value at a time, awaited only when a pipe returns a promise), then the handler. */
    const invoke = (args: unknown[]): unknown => {
      if (params.length === 0) return callback.apply(instance, args);
      const callArgs = new Array<unknown>(argsLength).fill(undefined);
      for (let p = 0; p < params.length; p++) {
        const param = params[p];
        let value = param.extractValue.apply(undefined, args);
        for (let i = 0; i < param.pipes.length; i++) {
          value = param.pipes[i].transform(value, param.argument);
          if (isThenable(value)) return finishPipesAsync(args, callArgs, p, i + 1, value);
        }
        callArgs[param.index] = value;
      }
      return callback.apply(instance, callArgs);
    };

    const finishPipesAsync = async (args: unknown[], callArgs: unknown[], p: number, nextPipe: number, pending: PromiseLike<unknown>): Promise<unknown> => {
      let value = await pending;
      for (let param = params[p], i = nextPipe; ; ) {
        for (; i < param.pipes.length; i++) value = await param.pipes[i].transform(value, param.argument);
        callArgs[param.index] = value;
        if (++p >= params.length) break;
        param = params[p];
        i = 0;
        value = param.extractValue.apply(undefined, args);
      }
      return callback.apply(instance, callArgs);
    };

    /** After the guards: Nest's interceptors (when there are any) around pipes and handler. */
    const afterGuards = (args: unknown[]): unknown => {
      if (interceptors.length === 0) return invoke(args);
      return this.interceptorsConsumer.intercept(interceptors, args, instance, callback, async () => invoke(args), 'ws');
    };

    const guardsAsync = async (args: unknown[], context: ExecutionContextHost, from: number, pending: unknown): Promise<unknown> => {
      if (!(await this.guardsConsumer.pickResult(pending as never))) throw new WsException(FORBIDDEN_MESSAGE);
      for (let i = from; i < guards.length; i++) {
        if (!(await this.guardsConsumer.pickResult(guards[i].canActivate(context) as never))) throw new WsException(FORBIDDEN_MESSAGE);
      }
      return settle(args, afterGuards(args));
    };

    /** A result that is a promise or an Observable: its errors go to the filters (as WsProxy does). */
    const settle = (args: unknown[], result: unknown): unknown => {
      if (isThenable(result)) return Promise.resolve(result).then((value) => settle(args, value), (error: unknown) => fail(args, error));
      if (isObservable(result)) return (result as Observable<unknown>).pipe(catchError((error: unknown) => (fail(args, error), EMPTY)));
      return result;
    };

    return (client: ChatClient, data: unknown): unknown => {
      const args: unknown[] = [client, data, pattern];
      try {
        if (guards.length > 0) {
          const context = new ExecutionContextHost(args, instance.constructor as never, callback);
          context.setType('ws');
          for (let i = 0; i < guards.length; i++) {
            const allowed = guards[i].canActivate(context);
            if (allowed === true) continue;
            if (allowed === false) throw new WsException(FORBIDDEN_MESSAGE);
            return guardsAsync(args, context, i + 1, allowed).catch((error: unknown) => fail(args, error));
          }
        }
        return settle(args, afterGuards(args));
      } catch (error) {
        fail(args, error);
        return undefined;
      }
    };
  }
}
