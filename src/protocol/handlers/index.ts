import { ADMIN_HANDLERS } from './admin';
import { Handler, SESSION_HANDLERS } from './session';

/** Handlers of the commands that run on the main thread, by command name. */
export const MAIN_HANDLERS: Record<string, Handler> = { ...SESSION_HANDLERS, ...ADMIN_HANDLERS };
