export type { EventEnvelope } from './generated/envelope.ts';
