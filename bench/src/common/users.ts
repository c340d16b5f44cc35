/** Generated users for the bench: user i has the id "u<i>" and a random token. */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import type { UserProfile } from '../../../src/protocol/protocol';

export interface BenchUser {
  token: string;
  profile: UserProfile;
}

export function userId(index: number): string {
  return `u${index}`;
}

/** `count` users in the reference auth server's users-file format. */
export function generateUsers(count: number): BenchUser[] {
  const salt = randomBytes(6).toString('hex');
  const users: BenchUser[] = [];
  for (let i = 0; i < count; i++) {
    users.push({
      token: `bench-${salt}-${i}`,
      profile: {
        userId: userId(i),
        nickname: `user ${i}`,
        avatar: '',
        language: i % 3 === 0 ? 'ru' : 'en',
        status: 'online and benchmarking',
        lastOnline: '2025-01-15T09:30:00.000Z',
        registerDate: '2024-03-01T12:00:00.000Z',
      },
    });
  }
  return users;
}

export function writeUsersFile(file: string, users: BenchUser[]): void {
  writeFileSync(file, JSON.stringify(users));
}
