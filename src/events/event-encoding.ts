import type { Activity } from '../messaging/activity';
import type { UserProfile } from '../protocol/protocol';

/**
 * The JSON text of one event (docs/protocol.md, "Events"): the envelope (`id`, `time`, `node`),
 * then the fact's fields. Written by hand, field by field, so that a dialog's clientData goes out
 * exactly as it was forwarded to the receiver (its JSON text embedded verbatim, never parsed and
 * serialized again: numbers beyond a double and string escapes survive), and so that nothing but
 * the named fields can ever reach an event: no token, whatever a fact object carries besides.
 *
 * `nodeJson` is the node id already as a JSON string (it is the same for every event).
 */
export function encodeEvent(activity: Activity, id: string, time: number, nodeJson: string): string {
  const head = `{"id":${JSON.stringify(id)},"time":"${time}","node":${nodeJson},`;
  switch (activity.kind) {
    case 'chat':
      return `${head}"message":${JSON.stringify(activity.message)},"sender":${JSON.stringify(activity.sender)},"sendTime":${JSON.stringify(activity.sendTime)}}`;
    case 'dialog':
      return (
        `${head}"messageId":${JSON.stringify(activity.messageId)},"sender":${JSON.stringify(activity.sender)},` +
        `"receiver":${JSON.stringify(activity.receiver)},"clientData":${activity.clientDataJson},` +
        `"sendTime":${JSON.stringify(activity.sendTime)},"status":${JSON.stringify(activity.status)}}`
      );
    case 'connect':
      return `${head}"userId":${JSON.stringify(activity.userId)}}`;
    case 'disconnect':
      return `${head}"userId":${JSON.stringify(activity.userId)},"code":${Number(activity.code)}}`;
    case 'profile': {
      // Flat, like USER_UPDATE_MESSAGE's serverData: userId and the changed fields beside it.
      const fields = JSON.stringify(profileFields(activity.changed)).slice(1, -1);
      return `${head}"userId":${JSON.stringify(activity.userId)}${fields ? `,${fields}` : ''}}`;
    }
  }
}

/** The profile fields an event may carry: a fact's `changed` is copied through this list only. */
export const PROFILE_EVENT_FIELDS = ['nickname', 'avatar', 'language', 'status', 'lastOnline', 'registerDate'] as const satisfies readonly (keyof UserProfile)[];

function profileFields(changed: Partial<UserProfile>): Partial<UserProfile> {
  const out: Partial<UserProfile> = {};
  for (const field of PROFILE_EVENT_FIELDS) {
    const value = changed[field];
    if (typeof value === 'string') out[field] = value;
  }
  return out;
}
