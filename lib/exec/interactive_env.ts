/**
 * The OAR_* environment of a job's interactive shell (`oarsub -I`, `oarsub -C`): what the job's
 * own command sees on its head node. Computed by the command server from the job's row and
 * handed to the user's oarsub, which runs the shell.
 */
import { nodeFilePath, resourceFilePath } from "./job_files.ts";
import { walltimeText } from "./run.ts";

/** The job's fields the environment is made of. */
export interface InteractiveJobFields {
  job_id: number;
  array_id: number;
  array_index: number;
  job_user: string;
  launching_directory: string;
  job_name: string | null;
  project: string | null;
}

/** The OAR_* variables the job's own command sees, for the interactive shell. */
export function interactiveEnvironment(
  job: InteractiveJobFields,
  walltimeSeconds: number,
  tmp: string,
): Record<string, string> {
  const nodeFile = nodeFilePath(tmp, job.job_id);
  const resFile = resourceFilePath(tmp, job.job_id);
  return {
    OAR_JOB_ID: String(job.job_id),
    OAR_JOBID: String(job.job_id),
    OAR_ARRAY_ID: String(job.array_id),
    OAR_ARRAY_INDEX: String(job.array_index),
    OAR_USER: job.job_user,
    OAR_NODEFILE: nodeFile,
    OAR_NODE_FILE: nodeFile,
    OAR_FILE_NODES: nodeFile,
    OAR_RESOURCE_PROPERTIES_FILE: resFile,
    OAR_RESOURCE_FILE: resFile,
    OAR_WORKDIR: job.launching_directory,
    OAR_WORKING_DIRECTORY: job.launching_directory,
    OAR_O_WORKDIR: job.launching_directory,
    OAR_JOB_NAME: job.job_name ?? "",
    OAR_PROJECT_NAME: job.project ?? "",
    OAR_JOB_WALLTIME: walltimeText(walltimeSeconds),
    OAR_JOB_WALLTIME_SECONDS: String(walltimeSeconds),
  };
}
