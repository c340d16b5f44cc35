import type { Provider } from '@nestjs/common';
import { GATEWAY_CONFIG, type GatewayConfig } from '../config/gateway-config';

/** The slice of the configuration the avatar feature reads. */
export type AvatarOptions = Pick<
  GatewayConfig,
  'publicUrl' | 'avatarDir' | 'avatarMaxBytes' | 'avatarMaxPixels' | 'avatarConcurrency' | 'avatarSavesPerMinute'
>;

export const AVATAR_OPTIONS = Symbol('AVATAR_OPTIONS');

export const avatarOptionsProvider: Provider = {
  provide: AVATAR_OPTIONS,
  inject: [GATEWAY_CONFIG],
  useFactory: (c: GatewayConfig): AvatarOptions => ({
    publicUrl: c.publicUrl,
    avatarDir: c.avatarDir,
    avatarMaxBytes: c.avatarMaxBytes,
    avatarMaxPixels: c.avatarMaxPixels,
    avatarConcurrency: c.avatarConcurrency,
    avatarSavesPerMinute: c.avatarSavesPerMinute,
  }),
};
