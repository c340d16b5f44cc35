import { Module } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module';
import { EngineModule } from '../engine/engine.module';
import { SessionModule } from '../session/session.module';
import { configureSharpForServer } from './avatar-image';
import { AVATAR_OPTIONS, avatarOptionsProvider, type AvatarOptions } from './avatar.options';
import { AVATAR_STORE } from './avatar-store';
import { AvatarController } from './avatar.controller';
import { AvatarService } from './avatar.service';
import { FsAvatarStore } from './fs-avatar-store';

/** SAVE_AVATAR and GET /avatars/<file>. */
@Module({
  imports: [AuthModule, EngineModule, SessionModule],
  controllers: [AvatarController],
  providers: [
    AvatarService,
    avatarOptionsProvider,
    {
      provide: AVATAR_STORE,
      inject: [AVATAR_OPTIONS],
      useFactory: (options: AvatarOptions) => {
        configureSharpForServer();
        return new FsAvatarStore(options.avatarDir);
      },
    },
  ],
})
export class AvatarModule {}
