import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsString, registerDecorator, ValidateIf, type ValidationOptions } from 'class-validator';

/** Optional, but not null: only an absent field skips the field's other rules. */
function IsOptional(): PropertyDecorator {
  return ValidateIf((object: object, value: unknown) => value !== undefined);
}

/** The most UTF-8 bytes a WebSocket close reason may have. */
export const CLOSE_REASON_MAX_BYTES = 123;

/** A string of at most `max` UTF-8 bytes (lone surrogates count as the 3 bytes they are sent as). */
function MaxUtf8Bytes(max: number, options?: ValidationOptions): PropertyDecorator {
  return (target, propertyName) =>
    registerDecorator({
      name: 'maxUtf8Bytes',
      target: target.constructor,
      propertyName: propertyName as string,
      constraints: [max],
      options: { message: `$property must be at most ${max} bytes of UTF-8`, ...options },
      validator: { validate: (value: unknown) => typeof value === 'string' && Buffer.byteLength(value, 'utf8') <= max },
    });
}

export class UserProfileDto {
  @ApiProperty({ example: '1' }) userId!: string;
  @ApiProperty({ example: 'alice' }) nickname!: string;
  @ApiProperty({ example: '' }) avatar!: string;
  @ApiProperty({ example: 'en' }) language!: string;
  @ApiProperty({ example: "Hi, I'm Alice" }) status!: string;
  @ApiProperty({ example: '2025-01-15T09:30:00.000Z' }) lastOnline!: string;
  @ApiProperty({ example: '2024-03-01T12:00:00.000Z' }) registerDate!: string;
}

export class OnlineUsersDto {
  @ApiProperty({ description: 'How many users are online, on all nodes' })
  count!: number;

  @ApiProperty({ type: [UserProfileDto] })
  users!: UserProfileDto[];
}

/** POST /api/v1/users/{userId}/disconnect. */
export class DisconnectDto {
  @ApiPropertyOptional({
    description: `The close reason the client gets with code 4403 (at most ${CLOSE_REASON_MAX_BYTES} bytes of UTF-8)`,
    example: 'banned by a moderator',
  })
  @IsOptional()
  @IsString()
  @MaxUtf8Bytes(CLOSE_REASON_MAX_BYTES)
  reason?: string;
}

export class DisconnectedDto {
  @ApiProperty({ description: "true: the user's connection was closed with 4403; false: the user was not online (or its node did not answer)" })
  disconnected!: boolean;
}

/** PATCH /api/v1/users/{userId}/profile: any of these fields (at least one). */
export class ProfilePatchDto {
  @ApiPropertyOptional({ example: 'alice the great' })
  @IsOptional()
  @IsString()
  nickname?: string;

  @ApiPropertyOptional({ example: 'fr' })
  @IsOptional()
  @IsString()
  language?: string;

  @ApiPropertyOptional({ example: 'away' })
  @IsOptional()
  @IsString()
  status?: string;

  @ApiPropertyOptional({ description: 'An avatar URL', example: 'https://cdn.example/alice.png' })
  @IsOptional()
  @IsString()
  avatar?: string;
}

/** The fields a profile patch may change. */
export const PROFILE_PATCH_FIELDS = ['nickname', 'language', 'status', 'avatar'] as const;

export class ApiErrorDto {
  @ApiProperty({ description: 'What went wrong' })
  error!: string;

  @ApiPropertyOptional({ type: [String], description: 'On a 400: the fields at fault (dotted paths)' })
  fields?: string[];
}
