import type { IncomingMessage } from 'node:http';
import { Injectable, NotFoundException, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { viaApiListener } from './api-listener';

/**
 * The Server API's routes exist on its own listener only: a request that reached one through the
 * public port (whatever spelling of the path got it past ApiListener's middleware) gets 404.
 */
@Injectable()
export class ApiListenerGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    if (!viaApiListener(context.switchToHttp().getRequest<IncomingMessage>())) throw new NotFoundException('Not Found');
    return true;
  }
}
