// Azure Container Registry webhooks (registry-spec §3.2). The body is one bare
// event, not Distribution's `{"events":[...]}`, but with Distribution's field
// names: `id`, `timestamp`, `action`, `target`, `request`.
// Only manifest pushes and deletes mean work; every other well-formed event is
// acknowledged as ignored, so a registry never records a failed delivery for
// an event Ferry has nothing to do for.
import { NotificationError, type IgnoredEvent, type RegistryEvent } from './event';
import { deleteFromTarget, ferryEcho, isObject, manifestPush, objectField, requiredEventId, requiredString, type Fields } from './fields';

export function parseAcrWebhook(body: unknown): RegistryEvent[] {
  if (!isObject(body)) throw new NotificationError('MALFORMED_ENVELOPE', 'the webhook body is not a JSON object');
  const event: Fields = { value: body, field: (name) => name };
  const action = requiredString(event, 'action');
  switch (action) {
    case 'push':
      return [ferryEcho(event, requiredEventId(event, 'id')) ?? manifestPush(event, requiredEventId(event, 'id'), objectField(event, 'target'))];
    case 'delete':
      return [ferryEcho(event, requiredEventId(event, 'id')) ?? parseDelete(event)];
    // `ping` is the test event that the portal's "Ping" button and
    // `az acr webhook ping` send to check that the endpoint answers; it names
    // no artifact, and a 2xx is what makes the ping show as delivered.
    case 'ping':
      return [ignored(event, 'ping: a connectivity test, not a registry change')];
    case 'chart_push':
    case 'chart_delete':
      return [ignored(event, `${action}: a Helm chart in ACR's legacy chart repository, not an OCI manifest`)];
    case 'quarantine':
      return [ignored(event, 'quarantine: the image is held for a scanner and cannot be pulled yet')];
    default:
      return [ignored(event, `unknown action ${JSON.stringify(action)}`)];
  }
}

// An ignored event is acknowledged whatever else it holds; its id is kept for
// the log when there is one.
function ignored(event: Fields, reason: string): IgnoredEvent {
  const { id } = event.value;
  return { kind: 'ignored', eventId: typeof id === 'string' && id !== '' ? id : null, reason };
}

// ACR sends a delete for a manifest (by digest) or a whole repository; it
// sends none for a tag alone, but a tag is read if one ever comes. A delete
// naming neither is a repository delete, which Ferry does not replicate.
function parseDelete(event: Fields): RegistryEvent {
  const eventId = requiredEventId(event, 'id');
  return deleteFromTarget(event, eventId, objectField(event, 'target'), (repository) => ({
    kind: 'ignored',
    eventId,
    reason: `repository delete of ${repository}: Ferry replicates manifest and tag deletes only`,
  }));
}
