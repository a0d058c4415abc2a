import type { CommandSpec } from '../command.js';
import { caInit } from './ca-init.js';
import { caServe } from './ca-serve.js';
import { caRootCrl } from './ca-root-crl.js';
import { caBackup, caRestore } from './ca-backup.js';
import { caRotateIntermediate } from './ca-rotate.js';
import { caMigrate } from './ca-migrate.js';
import { storeCopy } from './store.js';
import { fleetPostureCommand, fleetVulnsCommand } from './fleet.js';
import { vulnImport } from './vuln.js';
import { caRotateAbort, caRotateFinish, caRotateRoot, caRotateStatus } from './ca-rotate-root.js';
import { tokenCreate, tokenList, tokenRevoke } from './token.js';
import { certList, certRevoke, certShow, certSign } from './cert.js';
import { nameList, nameRelease } from './name.js';
import {
  secretCreate,
  secretDelete,
  secretGrant,
  secretList,
  secretRekey,
  secretRotate,
  secretShow,
  secretUngrant,
} from './secret.js';
import { contextAdd, contextList, contextRemove, contextUse } from './context.js';
import {
  agentEnroll,
  agentExport,
  agentRenew,
  agentReport,
  agentRun,
  agentSecretsSync,
  agentStatus,
  agentWhoami,
} from './agent.js';
import { quickstart } from './quickstart.js';
import { gatewayCommand } from './gateway.js';
import { policyCheck } from './policy.js';
import { demo } from './demo.js';
import { auditVerify } from './audit.js';
import { checkCommand } from './check.js';

export const COMMANDS: CommandSpec[] = [
  caInit,
  caServe,
  caMigrate,
  caRootCrl,
  caBackup,
  caRestore,
  caRotateIntermediate,
  caRotateRoot,
  caRotateStatus,
  caRotateFinish,
  caRotateAbort,
  tokenCreate,
  tokenList,
  tokenRevoke,
  certList,
  certShow,
  certRevoke,
  certSign,
  fleetPostureCommand,
  fleetVulnsCommand,
  vulnImport,
  nameList,
  nameRelease,
  secretCreate,
  secretList,
  secretShow,
  secretGrant,
  secretUngrant,
  secretRotate,
  secretDelete,
  secretRekey,
  contextAdd,
  contextUse,
  contextList,
  contextRemove,
  auditVerify,
  checkCommand,
  storeCopy,
  agentEnroll,
  agentWhoami,
  agentStatus,
  agentRenew,
  agentReport,
  agentRun,
  agentSecretsSync,
  agentExport,
  gatewayCommand,
  policyCheck,
  demo,
  quickstart,
];
