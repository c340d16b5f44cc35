import type { ServerResponse } from 'node:http';

import { Controller, Get, Inject, Param, Res } from '@nestjs/common';

import { AVATAR_STORE, type AvatarStore } from './avatar-store';

/**
 * GET /avatars/<file>: the saved avatars. File names are random and a file never changes once
 * published, so a found avatar is cacheable forever. Written against node's ServerResponse (which
 * express's Response extends) so that no express typings are needed.
 */
@Controller('avatars')
export class AvatarController {
  constructor(@Inject(AVATAR_STORE) private readonly store: AvatarStore) {}

  @Get(':file')
  async getAvatar(@Param('file') file: string, @Res() res: ServerResponse): Promise<void> {
    const avatar = await this.store.get(file);
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Content-Security-Policy', "default-src 'none'");
    if (!avatar) {
      const body = JSON.stringify({ statusCode: 404, message: 'avatar not found' });
      res.statusCode = 404;
      res.setHeader('Content-Type', 'application/json; charset=utf-8');
      res.setHeader('Content-Length', Buffer.byteLength(body));
      res.setHeader('Cache-Control', 'no-store');
      res.end(body);
      return;
    }
    res.statusCode = 200;
    res.setHeader('Content-Type', avatar.contentType);
    res.setHeader('Content-Length', avatar.data.length);
    res.setHeader('Cache-Control', 'public, max-age=31536000, immutable');
    res.end(avatar.data);
  }
}
