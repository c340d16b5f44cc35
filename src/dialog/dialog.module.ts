import { Module } from '@nestjs/common';
import { DialogService } from './dialog.service';

@Module({ providers: [DialogService] })
export class DialogModule {}
