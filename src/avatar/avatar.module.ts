import { Module } from '@nestjs/common';
import { GATEWAY_CONFIG, type GatewayConfig } from '../config/gateway-config';
import { PresenceModule } from '../presence/presence.module';
import { configureSharpForServer } from './avatar-image';
import { AVATAR_STORE } from './avatar-store';
import { AvatarController } from './avatar.controller';
import { AvatarService } from './avatar.service';
import { FsAvatarStore } from './fs-avatar-store';

@Module({
  imports: [PresenceModule],
  controllers: [AvatarController],
  providers: [
    AvatarService,
    { provide: AVATAR_STORE, inject: [GATEWAY_CONFIG], useFactory: (config: GatewayConfig) => {
        configureSharpForServer();
        return new FsAvatarStore(config.avatarDir);
      },
    },
  ],
})
export class AvatarModule {}
