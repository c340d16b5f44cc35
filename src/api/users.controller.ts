import { Body, Controller, Get, HttpCode, Inject, NotFoundException, Param, Patch, Post } from '@nestjs/common';
import { ApiBody, ApiNotFoundResponse, ApiOkResponse, ApiOperation, ApiParam, ApiServiceUnavailableResponse, ApiTags } from '@nestjs/swagger';
import type { UserProfile } from '../protocol/protocol';
import { SessionService } from '../session/session.service';
import { badRequest } from './api-errors';
import { API_OPTIONS, type ApiOptions } from './api.options';
import { ApiErrorDto, DisconnectDto, DisconnectedDto, OnlineUsersDto, PROFILE_PATCH_FIELDS, ProfilePatchDto, UserProfileDto } from './dto/users.dto';
import { ServerApiController, TakesJsonBody } from './server-api.decorators';

/** The close reason of a kick when the backend gives none. */
export const DEFAULT_KICK_REASON = "disconnected by the application's backend";

/** Who is online, anywhere in the deployment; a user's connection closed or profile changed on its node. */
@ApiTags('users')
@Controller('api/v1/users')
@ServerApiController()
export class UsersController {
  constructor(
    private readonly sessions: SessionService,
    @Inject(API_OPTIONS) private readonly options: Pick<ApiOptions, 'commandTimeoutMs'>,
  ) {}

  @Get()
  @ApiOperation({ summary: 'Everyone online, on all nodes' })
  @ApiOkResponse({ type: OnlineUsersDto, description: 'Everyone online' })
  async online(): Promise<OnlineUsersDto> {
    const users = await this.sessions.online();
    return { count: users.length, users };
  }

  @Get(':userId')
  @ApiOperation({ summary: "A user's profile, if online" })
  @ApiParam({ name: 'userId', description: 'The userId' })
  @ApiOkResponse({ type: UserProfileDto, description: 'The profile' })
  @ApiNotFoundResponse({ description: 'Not online', type: ApiErrorDto })
  async find(@Param('userId') userId: string): Promise<UserProfile> {
    return orNotOnline(await this.sessions.find(userId));
  }

  @Post(':userId/disconnect')
  @HttpCode(200)
  @ApiOperation({ summary: "Closes the user's connection, wherever it is, with 4403; its DISCONNECT is broadcast" })
  @ApiParam({ name: 'userId', description: 'The userId' })
  @ApiBody({ type: DisconnectDto, required: false })
  @ApiOkResponse({ type: DisconnectedDto, description: 'Whether a connection was closed (false: the user is not online)' })
  @ApiServiceUnavailableResponse({ description: "The user's node did not answer in time: nothing is known, retry", type: ApiErrorDto })
  @TakesJsonBody()
  async disconnect(@Param('userId') userId: string, @Body() body: DisconnectDto): Promise<DisconnectedDto> {
    const disconnected = await this.sessions.kick(userId, body.reason ?? DEFAULT_KICK_REASON, this.options.commandTimeoutMs);
    return { disconnected };
  }

  @Patch(':userId/profile')
  @ApiOperation({ summary: "Changes an online user's profile on its node; everyone else gets a USER_UPDATE_MESSAGE with the changed fields" })
  @ApiParam({ name: 'userId', description: 'The userId' })
  @ApiOkResponse({ type: UserProfileDto, description: 'The new profile' })
  @TakesJsonBody()
  @ApiNotFoundResponse({ description: 'Not online', type: ApiErrorDto })
  @ApiServiceUnavailableResponse({ description: "The user's node did not answer in time: nothing is known, retry", type: ApiErrorDto })
  async changeProfile(@Param('userId') userId: string, @Body() body: ProfilePatchDto): Promise<UserProfile> {
    const patch: Partial<UserProfile> = {};
    for (const field of PROFILE_PATCH_FIELDS) if (body[field] !== undefined) patch[field] = body[field];
    if (Object.keys(patch).length === 0) throw badRequest(`give at least one of ${PROFILE_PATCH_FIELDS.join(', ')}`, [...PROFILE_PATCH_FIELDS]);
    return orNotOnline(await this.sessions.changeProfile(userId, patch, this.options.commandTimeoutMs));
  }
}

function orNotOnline(profile: UserProfile | undefined): UserProfile {
  if (!profile) throw new NotFoundException('user not online');
  return profile;
}
