/** What each command does in the command server: the commands' own code, in lib/cli/. */
import { holdResumeMain } from "../../lib/cli/hold_resume.ts";
import { oardelMain } from "../../lib/cli/oardel.ts";
import { oarnodesMain } from "../../lib/cli/oarnodes.ts";
import { oarnodesettingMain } from "../../lib/cli/oarnodesetting.ts";
import { oarnotifyMain } from "../../lib/cli/oarnotify.ts";
import { oarpropertyMain } from "../../lib/cli/oarproperty.ts";
import { oarstatMain } from "../../lib/cli/oarstat.ts";
import { oarsubMain } from "../../lib/cli/oarsub.ts";
import {
  oarsubCancelMain,
  oarsubConnectMain,
  oarsubStatusMain,
} from "../../lib/cli/oarsub_jobs.ts";
import type { CommandHandler } from "./server.ts";

export const COMMAND_HANDLERS: Readonly<Record<string, CommandHandler>> = {
  oarsub: oarsubMain,
  "oarsub:status": oarsubStatusMain,
  "oarsub:cancel": oarsubCancelMain,
  "oarsub:connect": oarsubConnectMain,
  oarstat: oarstatMain,
  oardel: oardelMain,
  oarhold: (args) => holdResumeMain("hold", args),
  oarresume: (args) => holdResumeMain("resume", args),
  oarnodes: oarnodesMain,
  oarnodesetting: oarnodesettingMain,
  oarproperty: oarpropertyMain,
  oarnotify: oarnotifyMain,
};
